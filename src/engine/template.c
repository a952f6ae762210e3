/*
 * template.c — the chat template: which one a model uses, and rendering
 * messages through it (spec: the OpenAI chat endpoint sends messages, the
 * model sees one prompt string).
 *
 * llama.cpp's llama_chat_apply_template() has no Jinja engine: it knows a
 * fixed list of templates, by name ("chatml", "llama3", ...) or by
 * recognising the text of a GGUF's template.  It returns a negative value
 * for a template it does not know.  So the choice is made, and tested with
 * a one-message render, once at load; after that m->tmpl never changes and
 * rendering is thread-safe.
 */
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "engine/engine_int.h"

/* Whether llama.cpp can render with 'tmpl' (a name or template text). */
static bool template_known(const char *tmpl)
{
	const struct llama_chat_message probe = {.role = "user", .content = "hi"};
	char out[256];
	return llama_chat_apply_template(tmpl, &probe, 1, true, out, (int32_t)sizeof out) >= 0;
}

enum brg_err engine_template_pick(struct engine_model *m, const char *name, struct brg_error *err)
{
	const char *tmpl = name;
	if (name) {
		if (!template_known(name))
			return brg_fail(err, BRG_E_BAD_REQUEST, "unknown chat template %s", name);
		log_info("model %s: chat template %s", m->id, name);
	} else {
		tmpl = llama_model_chat_template(m->model, NULL);
		/*
		 * A GGUF whose Jinja template llama.cpp cannot recognise would
		 * fail every chat request; ChatML is the common default that
		 * llama-server falls back to as well.
		 */
		if (tmpl && !template_known(tmpl)) {
			log_warn("model %s: chat template in the GGUF is not one llama.cpp "
			         "knows; using chatml",
			         m->id);
			tmpl = NULL;
		}
		log_info("model %s: chat template %s", m->id,
		         tmpl ? "from the GGUF" : "chatml (default)");
		if (!tmpl)
			tmpl = "chatml";
	}
	m->tmpl = strdup(tmpl);
	if (!m->tmpl)
		return brg_fail(err, BRG_E_NOMEM, "out of memory");
	return BRG_OK;
}

/* Renders into a buffer of 'cap' bytes; returns the rendered length or < 0. */
static int32_t render(const char *tmpl, const struct llama_chat_message *lm, size_t n, char *out,
                      size_t cap)
{
	return llama_chat_apply_template(tmpl, lm, n, true, out, (int32_t)cap);
}

enum brg_err engine_chat_render(struct engine_model *m, const struct chat_msg *msgs, size_t n,
                                char **out, struct brg_error *err)
{
	enum brg_err rc = BRG_OK;
	struct llama_chat_message *lm = NULL;
	char *text = NULL;
	size_t total = 64;
	*out = NULL;
	lm = calloc(n ? n : 1, sizeof *lm);
	if (!lm)
		return brg_fail(err, BRG_E_NOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		if (!msgs[i].role || !msgs[i].content) {
			rc = brg_fail(err, BRG_E_BAD_REQUEST,
			              "messages[%zu] has no role or content", i);
			goto fail;
		}
		lm[i].role = msgs[i].role;
		lm[i].content = msgs[i].content;
		total += strlen(msgs[i].content) + strlen(msgs[i].role);
	}
	if (total > INT32_MAX / 2) {
		rc = brg_fail(err, BRG_E_TOO_LARGE, "messages too long for the chat template");
		goto fail;
	}
	/* llama.h recommends twice the message text; grow once if that is short. */
	size_t cap = 2 * total;
	for (int attempt = 0; attempt < 2; attempt++) {
		char *grown = realloc(text, cap + 1);
		if (!grown) {
			rc = brg_fail(err, BRG_E_NOMEM, "out of memory");
			goto fail;
		}
		text = grown;
		int32_t len = render(m->tmpl, lm, n, text, cap);
		if (len < 0) {
			rc = brg_fail(err, BRG_E_BAD_REQUEST,
			              "chat template of model %s rejects these messages", m->id);
			goto fail;
		}
		if ((size_t)len <= cap) {
			text[len] = '\0'; /* llama.cpp copies with strncpy: no NUL at len == cap */
			free(lm);
			*out = text;
			return BRG_OK;
		}
		cap = (size_t)len;
	}
	rc = brg_fail(err, BRG_E_INTERNAL, "chat template output kept growing");
fail:
	free(text);
	free(lm);
	return rc;
}

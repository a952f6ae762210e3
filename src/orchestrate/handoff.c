/*
 * handoff.c — the handoff state that carries a multi-model request from
 * one step to the next (spec: Handoff State Object), its JSON form for
 * step events and the handoff cache, and the two prompt blocks made from
 * it: the handoff block and the trajectory block (spec: Trajectory
 * Injection).  Contracts in context.h.
 *
 * Invariant: every string a struct handoff owns went through
 * context_text_append(), so it is valid UTF-8 within its cap, and the
 * rendered blocks fold each value to one line so that text from a model
 * can never add a line or a heading of its own.
 */
#include "orchestrate/context.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "orchestrate/context_int.h"

/* The five lists by their spec names, so each rule is written once. */
static const struct {
	const char *name;
	size_t offset;
} lists[] = {
    {"constraints", offsetof(struct handoff, constraints)},
    {"decisions_made", offsetof(struct handoff, decisions_made)},
    {"evidence_refs", offsetof(struct handoff, evidence_refs)},
    {"active_errors", offsetof(struct handoff, active_errors)},
    {"resolved_errors", offsetof(struct handoff, resolved_errors)},
};
#define N_LISTS (sizeof lists / sizeof *lists)

static struct strlist *list_at(struct handoff *h, size_t i)
{
	return (struct strlist *)((char *)h + lists[i].offset);
}

static const struct strlist *list_at_const(const struct handoff *h, size_t i)
{
	return (const struct strlist *)((const char *)h + lists[i].offset);
}

/* Sets BRG_E_HANDOFF_INVALID with the offending field's name. */
static enum brg_err invalid(struct brg_error *err, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum brg_err invalid(struct brg_error *err, const char *field, const char *fmt, ...)
{
	char msg[BRG_ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	brg_error_detail_str(err, "field", field);
	return brg_fail(err, BRG_E_HANDOFF_INVALID, "Invalid handoff state: %s", msg);
}

/* ---- life cycle -------------------------------------------------------------- */

void handoff_fini(struct handoff *h)
{
	if (!h)
		return;
	free(h->goal);
	for (size_t i = 0; i < N_LISTS; i++) {
		struct strlist *l = list_at(h, i);
		for (size_t k = 0; k < l->n; k++)
			free(l->items[k]);
		free(l->items);
	}
	free(h->compressed_context);
	memset(h, 0, sizeof *h);
}

enum brg_err handoff_init(struct handoff *h, const char *request_id, const char *goal,
                          int total_steps, struct brg_error *err)
{
	if (!h)
		return brg_fail(err, BRG_E_BAD_REQUEST, "handoff_init: no state");
	memset(h, 0, sizeof *h);
	size_t id_len = request_id ? strnlen(request_id, HANDOFF_REQUEST_ID_MAX) : 0;
	if (id_len == 0 || id_len == HANDOFF_REQUEST_ID_MAX)
		return invalid(err, "request_id", "request_id must be 1 to %d bytes",
		               HANDOFF_REQUEST_ID_MAX - 1);
	memcpy(h->request_id, request_id, id_len + 1);
	if (goal && !(h->goal = context_text_dup(goal, CONTEXT_TEXT_UNLIMIT)))
		return brg_fail(err, BRG_E_NOMEM, "out of memory creating the handoff state");
	h->current_step = 1;
	h->total_steps = total_steps;
	enum brg_err rc = handoff_validate(h, err);
	if (rc)
		handoff_fini(h);
	return rc;
}

enum brg_err handoff_add(struct strlist *l, const char *text, struct brg_error *err)
{
	if (!l || !text)
		return brg_fail(err, BRG_E_BAD_REQUEST, "handoff_add: no list or no text");
	if (context_is_blank(text))
		return BRG_OK;
	char *c = context_text_dup(text, HANDOFF_ITEM_MAX);
	if (!c)
		return brg_fail(err, BRG_E_NOMEM, "out of memory adding to the handoff state");
	for (size_t i = 0; i < l->n; i++) {
		if (strcmp(l->items[i], c) == 0) {
			free(c);
			return BRG_OK;
		}
	}
	if (l->n >= HANDOFF_MAX_ITEMS) {
		free(c);
		brg_error_detail_int(err, "max_items", HANDOFF_MAX_ITEMS);
		return brg_fail(err, BRG_E_CONTEXT_BUDGET, "the handoff list is full (%d items)",
		                HANDOFF_MAX_ITEMS);
	}
	char **items = realloc(l->items, (l->n + 1) * sizeof *items);
	if (!items) {
		free(c);
		return brg_fail(err, BRG_E_NOMEM, "out of memory adding to the handoff state");
	}
	items[l->n++] = c;
	l->items = items;
	return BRG_OK;
}

enum brg_err handoff_set_context(struct handoff *h, const char *text, struct brg_error *err)
{
	if (!h)
		return brg_fail(err, BRG_E_BAD_REQUEST, "handoff_set_context: no state");
	char *c = NULL;
	if (text && !(c = context_text_dup(text, CONTEXT_TEXT_UNLIMIT)))
		return brg_fail(err, BRG_E_NOMEM, "out of memory setting the handoff context");
	free(h->compressed_context);
	h->compressed_context = c;
	return BRG_OK;
}

/* ---- validation -------------------------------------------------------------- */

static bool is_text(const char *s)
{
	return s && utf8_valid(s, strlen(s));
}

static enum brg_err validate_list(const struct strlist *l, const char *name, struct brg_error *err)
{
	if (l->n > HANDOFF_MAX_ITEMS)
		return invalid(err, name, "%s holds %zu items (at most %d)", name, l->n,
		               HANDOFF_MAX_ITEMS);
	if (l->n > 0 && !l->items)
		return invalid(err, name, "%s has no items array", name);
	for (size_t k = 0; k < l->n; k++) {
		if (!is_text(l->items[k]) || strlen(l->items[k]) > HANDOFF_ITEM_MAX) {
			brg_error_detail_int(err, "index", (long long)k);
			return invalid(err, name, "%s[%zu] is missing, too long or not UTF-8", name,
			               k);
		}
	}
	return BRG_OK;
}

enum brg_err handoff_validate(const struct handoff *h, struct brg_error *err)
{
	if (!h)
		return invalid(err, "handoff", "no handoff state");
	size_t id_len = strnlen(h->request_id, HANDOFF_REQUEST_ID_MAX);
	if (id_len == 0 || id_len == HANDOFF_REQUEST_ID_MAX || !utf8_valid(h->request_id, id_len))
		return invalid(err, "request_id", "request_id is missing or malformed");
	if (context_is_blank(h->goal) || !is_text(h->goal))
		return invalid(err, "goal", "the goal is missing");
	if (h->total_steps < 1 || h->total_steps > HANDOFF_MAX_STEPS) {
		brg_error_detail_int(err, "total_steps", h->total_steps);
		return invalid(err, "total_steps", "total_steps %d is outside 1..%d",
		               h->total_steps, HANDOFF_MAX_STEPS);
	}
	if (h->current_step < 1 || h->current_step > h->total_steps) {
		brg_error_detail_int(err, "current_step", h->current_step);
		brg_error_detail_int(err, "total_steps", h->total_steps);
		return invalid(err, "current_step", "current_step %d is outside 1..%d",
		               h->current_step, h->total_steps);
	}
	for (size_t i = 0; i < N_LISTS; i++) {
		enum brg_err rc = validate_list(list_at_const(h, i), lists[i].name, err);
		if (rc)
			return rc;
	}
	if (h->compressed_context && !is_text(h->compressed_context))
		return invalid(err, "compressed_context", "compressed_context is not UTF-8");
	return BRG_OK;
}

/* ---- JSON --------------------------------------------------------------------- */

/* json_object_set_new() takes the value even when it fails, and a NULL
 * value (a failed json_string()) makes it fail, so one flag catches both. */
static void set(json_t *o, const char *key, json_t *v, bool *is_ok)
{
	if (json_object_set_new(o, key, v) != 0)
		*is_ok = false;
}

static json_t *list_json(const struct strlist *l)
{
	json_t *a = json_array();
	for (size_t k = 0; a && k < l->n; k++) {
		if (json_array_append_new(a, json_string(l->items[k])) != 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

enum brg_err handoff_to_json(const struct handoff *h, char **out, struct brg_error *err)
{
	if (!out)
		return brg_fail(err, BRG_E_BAD_REQUEST, "handoff_to_json: no output");
	*out = NULL;
	enum brg_err rc = handoff_validate(h, err);
	if (rc)
		return rc;
	json_t *o = json_object();
	bool is_ok = o != NULL;
	if (is_ok) {
		set(o, "request_id", json_string(h->request_id), &is_ok);
		set(o, "goal", json_string(h->goal), &is_ok);
		set(o, "current_step", json_integer(h->current_step), &is_ok);
		set(o, "total_steps", json_integer(h->total_steps), &is_ok);
		for (size_t i = 0; i < N_LISTS; i++)
			set(o, lists[i].name, list_json(list_at_const(h, i)), &is_ok);
		set(o, "compressed_context",
		    h->compressed_context ? json_string(h->compressed_context) : json_null(),
		    &is_ok);
	}
	if (is_ok)
		*out = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (!*out)
		return brg_fail(err, BRG_E_NOMEM, "out of memory writing the handoff state");
	return BRG_OK;
}

/* An int member, or invalid() when it is missing, not an integer or out
 * of int range. */
static enum brg_err int_member(json_t *root, const char *key, int *out, struct brg_error *err)
{
	json_t *v = json_object_get(root, key);
	if (!json_is_integer(v) || json_integer_value(v) < -2147483647 ||
	    json_integer_value(v) > 2147483647)
		return invalid(err, key, "%s must be an integer", key);
	*out = (int)json_integer_value(v);
	return BRG_OK;
}

static enum brg_err list_from_json(json_t *root, size_t i, struct handoff *h, struct brg_error *err)
{
	json_t *a = json_object_get(root, lists[i].name);
	if (!a)
		return BRG_OK;
	if (!json_is_array(a) || json_array_size(a) > HANDOFF_MAX_ITEMS)
		return invalid(err, lists[i].name, "%s must be an array of at most %d strings",
		               lists[i].name, HANDOFF_MAX_ITEMS);
	for (size_t k = 0; k < json_array_size(a); k++) {
		const char *s = json_string_value(json_array_get(a, k));
		if (!s)
			return invalid(err, lists[i].name, "%s[%zu] must be a string",
			               lists[i].name, k);
		enum brg_err rc = handoff_add(list_at(h, i), s, err);
		if (rc)
			return rc;
	}
	return BRG_OK;
}

static enum brg_err from_object(json_t *root, struct handoff *out, struct brg_error *err)
{
	const char *id = json_string_value(json_object_get(root, "request_id"));
	const char *goal = json_string_value(json_object_get(root, "goal"));
	int current = 0, total = 0;
	enum brg_err rc = int_member(root, "current_step", &current, err);
	if (!rc)
		rc = int_member(root, "total_steps", &total, err);
	if (!rc)
		rc = handoff_init(out, id, goal, total, err);
	for (size_t i = 0; !rc && i < N_LISTS; i++)
		rc = list_from_json(root, i, out, err);
	json_t *ctx = json_object_get(root, "compressed_context");
	if (!rc && ctx && !json_is_null(ctx)) {
		if (!json_is_string(ctx))
			return invalid(err, "compressed_context",
			               "compressed_context must be a string");
		rc = handoff_set_context(out, json_string_value(ctx), err);
	}
	if (rc)
		return rc;
	out->current_step = current;
	return handoff_validate(out, err);
}

enum brg_err handoff_from_json(const char *json, size_t len, struct handoff *out,
                               struct brg_error *err)
{
	if (!out)
		return brg_fail(err, BRG_E_BAD_REQUEST, "handoff_from_json: no output");
	memset(out, 0, sizeof *out);
	if (!json)
		return brg_fail(err, BRG_E_BAD_REQUEST, "handoff_from_json: no input");
	json_error_t je;
	json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
	enum brg_err rc;
	if (!json_is_object(root)) {
		rc = invalid(err, "handoff", "not a JSON object (%s)",
		             root ? "wrong type" : je.text);
	} else {
		rc = from_object(root, out, err);
		if (rc == BRG_E_CONTEXT_BUDGET) /* a list item past the cap */
			rc = invalid(err, "handoff", "a list holds too many items");
	}
	json_decref(root);
	if (rc)
		handoff_fini(out);
	return rc;
}

/* ---- prompt blocks ----------------------------------------------------------- */

/* Drops what was appended after 'len' (a header whose value folded to
 * nothing). */
static void truncate_to(struct buf *b, size_t len)
{
	b->len = len;
	if (b->data)
		b->data[len] = '\0';
}

static enum brg_err section(struct buf *b, const char *title, const struct strlist *l)
{
	if (l->n == 0)
		return BRG_OK;
	enum brg_err rc = buf_appendf(b, "### %s\n", title);
	for (size_t k = 0; !rc && k < l->n; k++) {
		size_t before = b->len;
		rc = buf_append(b, "- ", 2);
		if (!rc)
			rc = context_text_append(b, l->items[k], strlen(l->items[k]),
			                         HANDOFF_ITEM_MAX, true);
		if (!rc && b->len == before + 2) /* folded to nothing */
			truncate_to(b, before);
		else if (!rc)
			rc = buf_append(b, "\n", 1);
	}
	return rc;
}

char *handoff_render(const struct handoff *h)
{
	if (!h)
		return NULL;
	struct buf b;
	buf_init(&b, CONTEXT_TEXT_UNLIMIT);
	bool has_context = !context_is_blank(h->compressed_context);
	if (!has_context && h->decisions_made.n == 0 && h->constraints.n == 0 &&
	    h->evidence_refs.n == 0 && h->active_errors.n == 0)
		return buf_take(&b); /* nothing to hand off: "" */
	enum brg_err rc = buf_append(&b, "## Handoff\n", 11);
	if (!rc)
		rc = section(&b, "Decisions", &h->decisions_made);
	if (!rc)
		rc = section(&b, "Constraints", &h->constraints);
	if (!rc)
		rc = section(&b, "Evidence", &h->evidence_refs);
	if (!rc)
		rc = section(&b, "Open errors", &h->active_errors);
	if (!rc && has_context) {
		const char *c = h->compressed_context;
		rc = buf_append(&b, "### Context\n", 12);
		if (!rc)
			rc = context_text_append(&b, c, strlen(c), CONTEXT_TEXT_UNLIMIT, false);
		if (!rc && b.data[b.len - 1] != '\n')
			rc = buf_append(&b, "\n", 1);
	}
	if (rc) {
		buf_fini(&b);
		return NULL;
	}
	return buf_take(&b);
}

/* Appends 's' folded and capped, or 'fallback' when it folds to nothing. */
static enum brg_err field(struct buf *b, const char *s, const char *fallback)
{
	size_t before = b->len;
	enum brg_err rc =
	    s ? context_text_append(b, s, strlen(s), TRAJECTORY_FIELD_MAX, true) : BRG_OK;
	if (!rc && b->len == before && fallback)
		rc = buf_append(b, fallback, strlen(fallback));
	return rc;
}

/* The last TRAJECTORY_PREVIOUS decisions, oldest first, joined by "; ". */
static enum brg_err previous(struct buf *out, const struct strlist *l)
{
	size_t from = l->n > TRAJECTORY_PREVIOUS ? l->n - TRAJECTORY_PREVIOUS : 0;
	enum brg_err rc = BRG_OK;
	for (size_t k = from; !rc && k < l->n; k++) {
		size_t before = out->len;
		if (before > 0)
			rc = buf_append(out, "; ", 2);
		if (!rc)
			rc = field(out, l->items[k], NULL);
		if (!rc && out->len == before + (before > 0 ? 2 : 0))
			truncate_to(out, before);
	}
	return rc;
}

char *trajectory_render(const struct handoff *h, const char *step_name, const char *next,
                        const char *forbidden)
{
	if (!h)
		return NULL;
	struct buf b, prev;
	buf_init(&b, 8 * TRAJECTORY_FIELD_MAX);
	buf_init(&prev, (HANDOFF_ITEM_MAX + 2) * TRAJECTORY_PREVIOUS);
	enum brg_err rc = buf_append(&b, "## Current Position\n- Goal: ", 28);
	if (!rc)
		rc = field(&b, h->goal, "none");
	if (!rc)
		rc = buf_appendf(&b, "\n- Step: %d/%d", h->current_step, h->total_steps);
	if (!rc) {
		size_t before = b.len;
		rc = buf_append(&b, " - ", 3);
		if (!rc)
			rc = field(&b, step_name, NULL);
		if (!rc && b.len == before + 3)
			truncate_to(&b, before);
	}
	if (!rc)
		rc = buf_append(&b, "\n- Previous: ", 13);
	if (!rc)
		rc = previous(&prev, &h->decisions_made);
	if (!rc)
		rc = field(&b, prev.data, "none");
	if (!rc)
		rc = buf_append(&b, "\n- Next: ", 9);
	if (!rc)
		rc = field(&b, next, "none");
	if (!rc)
		rc = buf_append(&b, "\n- Forbidden: ", 14);
	if (!rc)
		rc = field(&b, forbidden, "none");
	if (!rc)
		rc = buf_append(&b, "\n", 1);
	buf_fini(&prev);
	if (rc) {
		buf_fini(&b);
		return NULL;
	}
	return buf_take(&b);
}

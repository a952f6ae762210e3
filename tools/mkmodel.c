/*
 * mkmodel.c — writes a GGUF model with the exact shape of a real one, the
 * real vocabulary, and seeded random weights.
 *
 * Why: decode speed depends on the shapes and types of the tensors, never
 * on their values, so a random-weight model with Qwen2.5-0.5B's or
 * Llama-3.2-1B's shape is an honest stand-in for benchmarks, and a tiny one
 * lets the tests generate the model they load instead of downloading one.
 * The text such a model writes is gibberish; its tokenizer is real.
 *
 * How:
 *   1. the vocabulary: every tokenizer.* key of one of llama.cpp's
 *      vocab-only files (deps/llama.cpp/models/ggml-vocab-*.gguf) is copied;
 *      n_vocab is the length of tokenizer.ggml.tokens;
 *   2. the architecture's hyper-parameters (<arch>.block_count, ...) come
 *      from the shape table below, with the values of the published configs;
 *   3. mkmodel_gguf.c writes the F16 file: the metadata, then the seeded
 *      random tensors in chunks (its top comment says how values are drawn);
 *   4. for a quantized type the F16 file is a temporary, and
 *      llama_model_quantize() writes the target — the same code path as
 *      llama.cpp's llama-quantize tool, so the tensor type mix (Q4_K_M's
 *      Q6_K layers, fallbacks for rows not divisible by 256) is the real one.
 *
 * Output is written to FILE.<pid>.part and renamed at the end, so an
 * interrupted run never leaves a file that a cache would take for finished.
 */
#include "mkmodel.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ggml.h"
#include "llama.h"

static const struct rope_llama3 LLAMA32_ROPE = {32.0f, 1.0f, 4.0f, 8192};

/*
 * Llama 3's chat format, for the Llama-3.2 shape: llama.cpp's llama-bpe
 * vocab file carries no template, the real model does, and without one a
 * server falls back to another format and counts different prompt tokens.
 * This is the Llama 3 template without the tool and date preamble of 3.2's.
 */
static const char LLAMA3_TEMPLATE[] =
    "{{- bos_token }}{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + "
    "message['content'] | trim + '<|eot_id|>' }}{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}";

/*
 * The numbers are those of each model's published config.json.  All three
 * tie the output to token_embd, as the real Qwen2.5-0.5B and Llama-3.2-1B do.
 * tiny-llama uses Llama 2's 32,000-token SentencePiece vocabulary rather than
 * Llama 3's 128,256 BPE tokens: it keeps the file under 5 MB in F16, loads in
 * ~0.1 s, and puts the other tokenizer family (SPM) under test.
 */
static const struct shape SHAPES[] = {
    {
        .name = "qwen2.5-0.5b",
        .arch = "qwen2",
        .vocab = "qwen2",
        .n_layer = 24,
        .n_embd = 896,
        .n_ff = 4864,
        .n_head = 14,
        .n_head_kv = 2,
        .n_ctx_train = 32768,
        .rope_base = 1000000.0f,
        .rms_eps = 1e-6f,
        .has_qkv_bias = true,
        .is_tied = true,
        .about = "Qwen2.5-0.5B: 24 layers, n_embd 896, n_ff 4864, 14/2 heads, vocab 151936",
    },
    {
        .name = "llama-3.2-1b",
        .arch = "llama",
        .vocab = "llama-bpe",
        .n_layer = 16,
        .n_embd = 2048,
        .n_ff = 8192,
        .n_head = 32,
        .n_head_kv = 8,
        .n_ctx_train = 131072,
        .rope_base = 500000.0f,
        .rms_eps = 1e-5f,
        .is_tied = true,
        .rope_scaling = &LLAMA32_ROPE,
        .chat_template = LLAMA3_TEMPLATE,
        .about = "Llama-3.2-1B: 16 layers, n_embd 2048, n_ff 8192, 32/8 heads, vocab 128256",
    },
    {
        .name = "tiny-llama",
        .arch = "llama",
        .vocab = "llama-spm",
        .n_layer = 2,
        .n_embd = 64,
        .n_ff = 128,
        .n_head = 4,
        .n_head_kv = 2,
        .n_ctx_train = 2048,
        .rope_base = 10000.0f,
        .rms_eps = 1e-5f,
        .is_tied = true,
        .about = "for tests: 2 layers, n_embd 64, n_ff 128, 4/2 heads, Llama-2 SPM vocab 32000",
    },
};

struct qtype {
	const char *name;
	enum llama_ftype ftype;
};

static const struct qtype TYPES[] = {
    {"F16", LLAMA_FTYPE_MOSTLY_F16},
    {"Q8_0", LLAMA_FTYPE_MOSTLY_Q8_0},
    {"Q4_K_M", LLAMA_FTYPE_MOSTLY_Q4_K_M},
    {"Q4_0", LLAMA_FTYPE_MOSTLY_Q4_0},
};

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

struct opts {
	const struct shape *shape;
	const struct qtype *type;
	const char *out;
	const char *vocab_dir;
	uint64_t seed;
	int n_layer; /* 0: the shape's */
	bool is_verbose;
};

static void fail_msg(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("mkmodel: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* The F16 model of the options, to 'path'; says why on failure. */
static int write_f16(const struct opts *o, const struct gguf_context *vocab, int64_t n_vocab,
                     const char *path)
{
	char err[PATH_MAX + 128];
	int n_layer = o->n_layer ? o->n_layer : o->shape->n_layer;
	int rc =
	    mkmodel_write_f16(o->shape, n_layer, o->seed, vocab, n_vocab, path, err, sizeof err);
	if (rc)
		fail_msg("%s", err);
	return rc;
}

static int quantize(const char *in, const char *out, const struct qtype *type)
{
	struct llama_model_quantize_params p = llama_model_quantize_default_params();
	p.ftype = type->ftype;
	if (llama_model_quantize(in, out, &p) != 0) {
		fail_msg(
		    "llama_model_quantize to %s failed (run with --verbose for llama.cpp's log)",
		    type->name);
		return -1;
	}
	return 0;
}

/*
 * The vocab files of the llama.cpp source tree that set-up unpacks, found
 * from the binary's own place (build/mkmodel or build/asan/mkmodel) so the
 * tool works from any working directory.  The caller frees the result.
 */
static char *default_vocab_dir(void)
{
	char exe[PATH_MAX];
	ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (len <= 0)
		return NULL;
	exe[len] = '\0';
	char *slash = strrchr(exe, '/');
	if (slash)
		*slash = '\0';
	static const char *ups[] = {"/..", "/../..", "/../../.."};
	for (size_t i = 0; i < N_ELEMS(ups); i++) {
		char *dir = NULL;
		struct stat st;
		if (asprintf(&dir, "%s%s/deps/llama.cpp/models", exe, ups[i]) < 0)
			return NULL;
		if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
			return dir;
		free(dir);
	}
	return NULL;
}

/* Opens the shape's vocab file; NULL after saying why. */
static struct gguf_context *open_vocab(const struct opts *o, int64_t *out_n_vocab)
{
	char *dir = o->vocab_dir ? strdup(o->vocab_dir) : default_vocab_dir();
	char *path = NULL;
	struct gguf_context *vocab = NULL;
	if (!dir) {
		fail_msg("cannot find deps/llama.cpp/models next to the binary; pass --vocab-dir");
		return NULL;
	}
	if (asprintf(&path, "%s/ggml-vocab-%s.gguf", dir, o->shape->vocab) < 0) {
		free(dir);
		return NULL;
	}
	struct gguf_init_params p = {.no_alloc = true, .ctx = NULL};
	vocab = gguf_init_from_file(path, p);
	int64_t k = vocab ? gguf_find_key(vocab, "tokenizer.ggml.tokens") : -1;
	if (!vocab)
		fail_msg("cannot read the vocab file %s", path);
	else if (k < 0 || gguf_get_kv_type(vocab, k) != GGUF_TYPE_ARRAY)
		fail_msg("%s has no tokenizer.ggml.tokens array", path);
	else
		*out_n_vocab = (int64_t)gguf_get_arr_n(vocab, k);
	if (vocab && k < 0) {
		gguf_free(vocab);
		vocab = NULL;
	}
	free(path);
	free(dir);
	return vocab;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Writes o->out through OUT.PID.part (and OUT.PID.f16.part when quantizing). */
static int run(const struct opts *o)
{
	int rc = 1;
	int64_t n_vocab = 0;
	char *part = NULL, *f16 = NULL;
	double t0 = now_s();
	struct gguf_context *vocab = open_vocab(o, &n_vocab);
	if (!vocab)
		return 1;
	/* Per-process names: two runs for one file never write into each other. */
	if (asprintf(&part, "%s.%d.part", o->out, (int)getpid()) < 0 ||
	    asprintf(&f16, "%s.%d.f16.part", o->out, (int)getpid()) < 0) {
		fail_msg("out of memory");
		goto fail;
	}
	if (o->type->ftype == LLAMA_FTYPE_MOSTLY_F16) {
		if (write_f16(o, vocab, n_vocab, part))
			goto fail;
	} else if (write_f16(o, vocab, n_vocab, f16) || quantize(f16, part, o->type)) {
		goto fail;
	}
	if (rename(part, o->out)) {
		fail_msg("cannot rename %s to %s: %s", part, o->out, strerror(errno));
		goto fail;
	}
	struct stat st;
	double mib = stat(o->out, &st) == 0 ? (double)st.st_size / (1024.0 * 1024.0) : 0;
	fprintf(stderr, "mkmodel: wrote %s (%s %s, seed %llu, %.1f MiB) in %.1f s\n", o->out,
	        o->shape->name, o->type->name, (unsigned long long)o->seed, mib, now_s() - t0);
	rc = 0;
fail:
	if (f16)
		unlink(f16);
	if (part && rc)
		unlink(part);
	free(f16);
	free(part);
	gguf_free(vocab);
	return rc;
}

static void usage(FILE *f)
{
	fputs("usage: mkmodel --shape NAME --type F16|Q8_0|Q4_K_M|Q4_0 --out FILE\n"
	      "               [--seed N] [--layers N] [--vocab-dir DIR] [--verbose]\n"
	      "       mkmodel --list\n"
	      "Writes a GGUF model with the shape and vocabulary of a real one and seeded\n"
	      "random weights; the same arguments give a byte-identical file.\n",
	      f);
}

static void list_shapes(void)
{
	for (size_t i = 0; i < N_ELEMS(SHAPES); i++)
		printf("%-14s %-6s %s\n", SHAPES[i].name, SHAPES[i].arch, SHAPES[i].about);
	printf("types:");
	for (size_t i = 0; i < N_ELEMS(TYPES); i++)
		printf(" %s", TYPES[i].name);
	printf("\n");
}

/* Parses a whole decimal number in [lo, hi]; false when it is not one. */
static bool parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

static bool set_shape(struct opts *o, const char *name)
{
	for (size_t i = 0; i < N_ELEMS(SHAPES); i++)
		if (strcmp(SHAPES[i].name, name) == 0)
			o->shape = &SHAPES[i];
	if (!o->shape)
		fail_msg("unknown shape '%s' (mkmodel --list shows them)", name);
	return o->shape != NULL;
}

static bool set_type(struct opts *o, const char *name)
{
	for (size_t i = 0; i < N_ELEMS(TYPES); i++)
		if (strcasecmp(TYPES[i].name, name) == 0)
			o->type = &TYPES[i];
	if (!o->type)
		fail_msg("unknown type '%s' (F16, Q8_0, Q4_K_M or Q4_0)", name);
	return o->type != NULL;
}

/* Fills 'o'; returns -1 to go on, else the exit status (0 after --list/--help). */
static int parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option longs[] = {
	    {"shape", required_argument, NULL, 's'},  {"type", required_argument, NULL, 't'},
	    {"out", required_argument, NULL, 'o'},    {"seed", required_argument, NULL, 'S'},
	    {"layers", required_argument, NULL, 'L'}, {"vocab-dir", required_argument, NULL, 'V'},
	    {"list", no_argument, NULL, 'l'},         {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
	};
	uint64_t v;
	int c;
	*o = (struct opts){.seed = 42};
	while ((c = getopt_long(argc, argv, "s:t:o:S:L:V:lvh", longs, NULL)) != -1) {
		switch (c) {
		case 's':
			if (!set_shape(o, optarg))
				return 2;
			break;
		case 't':
			if (!set_type(o, optarg))
				return 2;
			break;
		case 'o':
			o->out = optarg;
			break;
		case 'S':
			if (!parse_u64(optarg, 0, UINT64_MAX, &o->seed)) {
				fail_msg("--seed wants a whole number, not '%s'", optarg);
				return 2;
			}
			break;
		case 'L':
			if (!parse_u64(optarg, 1, 1000, &v)) {
				fail_msg("--layers wants a number from 1 to 1000, not '%s'",
				         optarg);
				return 2;
			}
			o->n_layer = (int)v;
			break;
		case 'V':
			o->vocab_dir = optarg;
			break;
		case 'l':
			list_shapes();
			return 0;
		case 'v':
			o->is_verbose = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc)
		fail_msg("unexpected argument '%s'", argv[optind]);
	else if (!o->shape || !o->type || !o->out)
		fail_msg("--shape, --type and --out are required");
	else
		return -1;
	usage(stderr);
	return 2;
}

/* llama.cpp's log: errors only, everything with --verbose. */
static void on_log(enum ggml_log_level level, const char *text, void *ud)
{
	const bool *is_verbose = ud;
	if (*is_verbose || level == GGML_LOG_LEVEL_ERROR)
		fputs(text, stderr);
}

int main(int argc, char **argv)
{
	struct opts o;
	int rc = parse_args(argc, argv, &o);
	if (rc >= 0)
		return rc;
	llama_log_set(on_log, &o.is_verbose);
	llama_backend_init();
	rc = run(&o);
	llama_backend_free();
	return rc;
}

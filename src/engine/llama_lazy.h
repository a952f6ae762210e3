/*
 * llama_lazy.h — llama.cpp through a table of function pointers, filled at
 * the first model load by dlopen, so that a server that has not loaded a
 * model never maps libllama, libggml, libggml-base or libstdc++ (about
 * 3 MB of resident memory; docs/internals/engine.md, "Idle memory").
 *
 * Files in src/engine/ include this instead of llama.h.  After the table
 * below, every llama.cpp and ggml function the engine calls is a macro for
 * its pointer ('#define llama_decode (*brg_llama_fn.llama_decode)'), so call
 * sites read as plain llama.cpp calls.  The pointers are NULL until
 * llama_lazy_load() succeeds: engine_lib_load() (engine.c) calls it once,
 * and every path into llama.cpp goes through it first — engine_start() for
 * a load, engine_estimate() for a GGUF header.
 *
 * Adding a call to a llama.cpp function not listed: add it to
 * BRG_LLAMA_FNS and a #define below.  Forgetting either fails the build
 * (an unknown member, or an undefined reference: brigade does not link
 * libllama).
 */
#ifndef BRG_ENGINE_LLAMA_LAZY_H
#define BRG_ENGINE_LLAMA_LAZY_H

#include "ggml-backend.h"
#include "gguf.h"
#include "llama.h"

#include "core/err.h"

/* Every llama.cpp, ggml and gguf function the engine calls. */
#define BRG_LLAMA_FNS(X)                      \
	X(ggml_backend_dev_backend_reg)       \
	X(ggml_backend_dev_by_type)           \
	X(ggml_backend_dev_count)             \
	X(ggml_backend_load_all)              \
	X(ggml_backend_load_all_from_path)    \
	X(ggml_backend_reg_get_proc_address)  \
	X(ggml_threadpool_params_default)     \
	X(gguf_find_key)                      \
	X(gguf_free)                          \
	X(gguf_get_arr_data)                  \
	X(gguf_get_arr_n)                     \
	X(gguf_get_arr_type)                  \
	X(gguf_get_kv_type)                   \
	X(gguf_get_n_tensors)                 \
	X(gguf_get_tensor_size)               \
	X(gguf_get_val_data)                  \
	X(gguf_get_val_str)                   \
	X(gguf_init_from_file)                \
	X(llama_attach_threadpool)            \
	X(llama_backend_free)                 \
	X(llama_backend_init)                 \
	X(llama_batch_free)                   \
	X(llama_batch_init)                   \
	X(llama_chat_apply_template)          \
	X(llama_context_default_params)       \
	X(llama_decode)                       \
	X(llama_free)                         \
	X(llama_get_embeddings_seq)           \
	X(llama_get_logits_ith)               \
	X(llama_get_memory)                   \
	X(llama_init_from_model)              \
	X(llama_log_set)                      \
	X(llama_max_parallel_sequences)       \
	X(llama_memory_clear)                 \
	X(llama_memory_seq_cp)                \
	X(llama_memory_seq_pos_min)           \
	X(llama_memory_seq_rm)                \
	X(llama_model_chat_template)          \
	X(llama_model_default_params)         \
	X(llama_model_free)                   \
	X(llama_model_get_vocab)              \
	X(llama_model_has_decoder)            \
	X(llama_model_has_encoder)            \
	X(llama_model_is_hybrid)              \
	X(llama_model_is_recurrent)           \
	X(llama_model_load_from_file)         \
	X(llama_model_meta_val_str)           \
	X(llama_model_n_ctx_train)            \
	X(llama_model_n_embd_out)             \
	X(llama_model_size)                   \
	X(llama_n_ctx_seq)                    \
	X(llama_n_threads)                    \
	X(llama_sampler_chain_add)            \
	X(llama_sampler_chain_default_params) \
	X(llama_sampler_chain_init)           \
	X(llama_sampler_apply)                \
	X(llama_sampler_free)                 \
	X(llama_sampler_init_dist)            \
	X(llama_sampler_init_greedy)          \
	X(llama_sampler_init_min_p)           \
	X(llama_sampler_init_penalties)       \
	X(llama_sampler_init_temp)            \
	X(llama_sampler_init_top_k)           \
	X(llama_sampler_init_top_p)           \
	X(llama_sampler_sample)               \
	X(llama_set_n_threads)                \
	X(llama_state_seq_get_data)           \
	X(llama_state_seq_get_size)           \
	X(llama_state_seq_set_data)           \
	X(llama_token_to_piece)               \
	X(llama_tokenize)                     \
	X(llama_vocab_bos)                    \
	X(llama_vocab_get_add_bos)            \
	X(llama_vocab_is_eog)                 \
	X(llama_vocab_n_tokens)

struct brg_llama_fns {
#define BRG_LLAMA_FIELD(name) __typeof__(&name) name;
	BRG_LLAMA_FNS(BRG_LLAMA_FIELD)
#undef BRG_LLAMA_FIELD
};

/* All NULL until llama_lazy_load() succeeds; read-only after that. */
extern struct brg_llama_fns brg_llama_fn;

/*
 * dlopens libllama (by its soname, which the executable's RUNPATH finds
 * next to the binary's deps/; else in 'dir' when not NULL, the backend
 * directory) and fills brg_llama_fn from it and the libggml libraries it
 * pulls in.  Errors: BRG_E_MODEL_LOAD, naming the library or the symbol
 * missing (dlerror's words).  Not thread-safe: engine_lib_load() calls it
 * once under pthread_once.  The library stays mapped until exit.
 */
enum brg_err llama_lazy_load(const char *dir, struct brg_error *err);

#ifndef BRG_LLAMA_LAZY_IMPL
/* clang-format off */
#define ggml_backend_dev_backend_reg (*brg_llama_fn.ggml_backend_dev_backend_reg)
#define ggml_backend_dev_by_type (*brg_llama_fn.ggml_backend_dev_by_type)
#define ggml_backend_dev_count (*brg_llama_fn.ggml_backend_dev_count)
#define ggml_backend_load_all (*brg_llama_fn.ggml_backend_load_all)
#define ggml_backend_load_all_from_path (*brg_llama_fn.ggml_backend_load_all_from_path)
#define ggml_backend_reg_get_proc_address (*brg_llama_fn.ggml_backend_reg_get_proc_address)
#define ggml_threadpool_params_default (*brg_llama_fn.ggml_threadpool_params_default)
#define gguf_find_key (*brg_llama_fn.gguf_find_key)
#define gguf_free (*brg_llama_fn.gguf_free)
#define gguf_get_arr_data (*brg_llama_fn.gguf_get_arr_data)
#define gguf_get_arr_n (*brg_llama_fn.gguf_get_arr_n)
#define gguf_get_arr_type (*brg_llama_fn.gguf_get_arr_type)
#define gguf_get_kv_type (*brg_llama_fn.gguf_get_kv_type)
#define gguf_get_n_tensors (*brg_llama_fn.gguf_get_n_tensors)
#define gguf_get_tensor_size (*brg_llama_fn.gguf_get_tensor_size)
#define gguf_get_val_data (*brg_llama_fn.gguf_get_val_data)
#define gguf_get_val_str (*brg_llama_fn.gguf_get_val_str)
#define gguf_init_from_file (*brg_llama_fn.gguf_init_from_file)
#define llama_attach_threadpool (*brg_llama_fn.llama_attach_threadpool)
#define llama_backend_free (*brg_llama_fn.llama_backend_free)
#define llama_backend_init (*brg_llama_fn.llama_backend_init)
#define llama_batch_free (*brg_llama_fn.llama_batch_free)
#define llama_batch_init (*brg_llama_fn.llama_batch_init)
#define llama_chat_apply_template (*brg_llama_fn.llama_chat_apply_template)
#define llama_context_default_params (*brg_llama_fn.llama_context_default_params)
#define llama_decode (*brg_llama_fn.llama_decode)
#define llama_free (*brg_llama_fn.llama_free)
#define llama_get_embeddings_seq (*brg_llama_fn.llama_get_embeddings_seq)
#define llama_get_logits_ith (*brg_llama_fn.llama_get_logits_ith)
#define llama_get_memory (*brg_llama_fn.llama_get_memory)
#define llama_init_from_model (*brg_llama_fn.llama_init_from_model)
#define llama_log_set (*brg_llama_fn.llama_log_set)
#define llama_max_parallel_sequences (*brg_llama_fn.llama_max_parallel_sequences)
#define llama_memory_clear (*brg_llama_fn.llama_memory_clear)
#define llama_memory_seq_cp (*brg_llama_fn.llama_memory_seq_cp)
#define llama_memory_seq_pos_min (*brg_llama_fn.llama_memory_seq_pos_min)
#define llama_memory_seq_rm (*brg_llama_fn.llama_memory_seq_rm)
#define llama_model_chat_template (*brg_llama_fn.llama_model_chat_template)
#define llama_model_default_params (*brg_llama_fn.llama_model_default_params)
#define llama_model_free (*brg_llama_fn.llama_model_free)
#define llama_model_get_vocab (*brg_llama_fn.llama_model_get_vocab)
#define llama_model_has_decoder (*brg_llama_fn.llama_model_has_decoder)
#define llama_model_has_encoder (*brg_llama_fn.llama_model_has_encoder)
#define llama_model_is_hybrid (*brg_llama_fn.llama_model_is_hybrid)
#define llama_model_is_recurrent (*brg_llama_fn.llama_model_is_recurrent)
#define llama_model_load_from_file (*brg_llama_fn.llama_model_load_from_file)
#define llama_model_meta_val_str (*brg_llama_fn.llama_model_meta_val_str)
#define llama_model_n_ctx_train (*brg_llama_fn.llama_model_n_ctx_train)
#define llama_model_n_embd_out (*brg_llama_fn.llama_model_n_embd_out)
#define llama_model_size (*brg_llama_fn.llama_model_size)
#define llama_n_ctx_seq (*brg_llama_fn.llama_n_ctx_seq)
#define llama_n_threads (*brg_llama_fn.llama_n_threads)
#define llama_sampler_chain_add (*brg_llama_fn.llama_sampler_chain_add)
#define llama_sampler_chain_default_params (*brg_llama_fn.llama_sampler_chain_default_params)
#define llama_sampler_chain_init (*brg_llama_fn.llama_sampler_chain_init)
#define llama_sampler_apply (*brg_llama_fn.llama_sampler_apply)
#define llama_sampler_free (*brg_llama_fn.llama_sampler_free)
#define llama_sampler_init_dist (*brg_llama_fn.llama_sampler_init_dist)
#define llama_sampler_init_greedy (*brg_llama_fn.llama_sampler_init_greedy)
#define llama_sampler_init_min_p (*brg_llama_fn.llama_sampler_init_min_p)
#define llama_sampler_init_penalties (*brg_llama_fn.llama_sampler_init_penalties)
#define llama_sampler_init_temp (*brg_llama_fn.llama_sampler_init_temp)
#define llama_sampler_init_top_k (*brg_llama_fn.llama_sampler_init_top_k)
#define llama_sampler_init_top_p (*brg_llama_fn.llama_sampler_init_top_p)
#define llama_sampler_sample (*brg_llama_fn.llama_sampler_sample)
#define llama_set_n_threads (*brg_llama_fn.llama_set_n_threads)
#define llama_state_seq_get_data (*brg_llama_fn.llama_state_seq_get_data)
#define llama_state_seq_get_size (*brg_llama_fn.llama_state_seq_get_size)
#define llama_state_seq_set_data (*brg_llama_fn.llama_state_seq_set_data)
#define llama_token_to_piece (*brg_llama_fn.llama_token_to_piece)
#define llama_tokenize (*brg_llama_fn.llama_tokenize)
#define llama_vocab_bos (*brg_llama_fn.llama_vocab_bos)
#define llama_vocab_get_add_bos (*brg_llama_fn.llama_vocab_get_add_bos)
#define llama_vocab_is_eog (*brg_llama_fn.llama_vocab_is_eog)
#define llama_vocab_n_tokens (*brg_llama_fn.llama_vocab_n_tokens)
/* clang-format on */
#endif

#endif

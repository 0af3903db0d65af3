/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The host's term model.
 *
 * nifkit-host runs unmodified NIF libraries, so it must give ERL_NIF_TERM a
 * meaning of its own. A term is one machine word:
 *
 *   ...xxx000  pointer to a struct nk_box (8-byte aligned), never 0
 *   ...vvv001  small integer, value in the upper 61 bits (signed)
 *   ...iii010  atom, index into the global atom table
 *   ...000011  []                 (NK_NIL)
 *   ...001011  the exception marker returned by enif_make_badarg and
 *              enif_raise_exception (NK_EXCEPTION)
 *   ...iii100  local pid, index into the global pid table
 *   ...iii101  port, index into the global port table
 *
 * Term 0 is never a valid term (NK_NONE).
 *
 * Pids and ports are interned and live forever because erl_nif.h defines
 * enif_make_pid() as a macro that returns ErlNifPid.pid unchanged: NIFs keep
 * ErlNifPid in their own memory (resources, thread state) and turn it back
 * into a term in any env, at any time. Atoms are interned for the same reason
 * BEAM interns them.
 *
 * Integers are canonical: a value that fits in NK_SMALL_MIN..NK_SMALL_MAX is
 * always an immediate, anything else always an NK_BIG box. Two equal integers
 * therefore have the same representation, which keeps enif_is_identical and
 * term comparison simple.
 *
 * Boxes are allocated in the arena of the env that made them and die with
 * it (enif_clear_env, enif_free_env, or the end of a call). Binary data is
 * reference counted separately (struct nk_binobj) so that ErlNifBinary and
 * sub-binaries can outlive a single box.
 */
#ifndef NIFKIT_HOST_TERM_H
#define NIFKIT_HOST_TERM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>

#include <erl_nif.h>

#define NK_TAG_MASK   ((ERL_NIF_TERM) 7)
#define NK_TAG_BOX    ((ERL_NIF_TERM) 0)
#define NK_TAG_SMALL  ((ERL_NIF_TERM) 1)
#define NK_TAG_ATOM   ((ERL_NIF_TERM) 2)
#define NK_TAG_SPEC   ((ERL_NIF_TERM) 3)
#define NK_TAG_PID    ((ERL_NIF_TERM) 4)
#define NK_TAG_PORT   ((ERL_NIF_TERM) 5)

#define NK_NONE       ((ERL_NIF_TERM) 0)
#define NK_NIL        ((ERL_NIF_TERM) ((0 << 3) | NK_TAG_SPEC))
#define NK_EXCEPTION  ((ERL_NIF_TERM) ((1 << 3) | NK_TAG_SPEC))
/* Returned by enif_schedule_nif: the server then runs env->resched_fp. */
#define NK_RESCHEDULE ((ERL_NIF_TERM) ((2 << 3) | NK_TAG_SPEC))

#define NK_SMALL_MAX  ((int64_t) ((INT64_C(1) << 60) - 1))
#define NK_SMALL_MIN  ((int64_t) (-(INT64_C(1) << 60)))

static inline unsigned nk_tag(ERL_NIF_TERM t) { return (unsigned) (t & NK_TAG_MASK); }
static inline bool nk_is_box(ERL_NIF_TERM t) { return t != NK_NONE && nk_tag(t) == NK_TAG_BOX; }
static inline bool nk_is_small(ERL_NIF_TERM t) { return nk_tag(t) == NK_TAG_SMALL; }
static inline bool nk_is_atom(ERL_NIF_TERM t) { return nk_tag(t) == NK_TAG_ATOM; }
static inline bool nk_is_pid(ERL_NIF_TERM t) { return nk_tag(t) == NK_TAG_PID; }
static inline bool nk_is_port(ERL_NIF_TERM t) { return nk_tag(t) == NK_TAG_PORT; }

static inline ERL_NIF_TERM nk_make_small(int64_t v) { return ((ERL_NIF_TERM) v << 3) | NK_TAG_SMALL; }
static inline int64_t nk_small_value(ERL_NIF_TERM t) { return ((int64_t) t) >> 3; }
static inline ERL_NIF_TERM nk_make_atom_term(uint32_t index) { return ((ERL_NIF_TERM) index << 3) | NK_TAG_ATOM; }
static inline uint32_t nk_atom_index(ERL_NIF_TERM t) { return (uint32_t) (t >> 3); }

/* ---- boxes ---------------------------------------------------------------- */

enum nk_box_kind {
        NK_BIG = 1,      /* integer outside the small range */
        NK_FLOAT,
        NK_TUPLE,
        NK_CONS,
        NK_MAP,
        NK_BINARY,       /* binary or bitstring, possibly a sub-binary */
        NK_REF,          /* reference made here or decoded from ETF */
        NK_RESOURCE,     /* resource term: a reference to a host resource */
        NK_EXTPID,       /* pid of another node, kept as decoded */
        NK_EXTPORT,      /* port of another node, kept as decoded */
        NK_FUN,          /* fun, kept as its ETF bytes (NIFs cannot make funs) */
};

struct nk_box {
        uint32_t kind;          /* enum nk_box_kind */
        uint32_t n;             /* meaning depends on kind, see below */
};

/* Sign and magnitude, magnitude little-endian as in ETF's SMALL_BIG_EXT,
 * without leading (high) zero bytes. n = number of magnitude bytes. */
struct nk_big {
        struct nk_box h;
        uint8_t sign;           /* 1 = negative */
        uint8_t digits[];
};

struct nk_float {
        struct nk_box h;
        double value;
};

/* n = arity */
struct nk_tuple {
        struct nk_box h;
        ERL_NIF_TERM elems[];
};

struct nk_cons {
        struct nk_box h;
        ERL_NIF_TERM head;
        ERL_NIF_TERM tail;
};

/* n = number of pairs. keys[] is sorted in map key order (nk_map_key_cmp),
 * vals[i] belongs to keys[i]; both arrays are inline after the header. A map
 * is immutable once made: enif_make_map_put and friends build a new one. */
struct nk_map {
        struct nk_box h;
        ERL_NIF_TERM *keys;
        ERL_NIF_TERM *vals;
        /* Iteration order, or NULL for sorted order. BEAM iterates maps of
         * more than 32 pairs in its internal hash order, and sends them in
         * that order; a map decoded from ETF keeps the order it arrived in
         * so that a NIF iterating it sees what it would see in BEAM. */
        uint32_t *iter_order;
};

/*
 * Binary data. One nk_binobj owns a byte buffer; every binary term, sub-binary
 * and ErlNifBinary made by enif_alloc_binary holds one reference. The last
 * nk_binobj_release frees the buffer, or calls release_fn for external data
 * (enif_make_resource_binary).
 */
struct nk_binobj {
        atomic_long refc;
        size_t size;
        uint8_t *data;
        void (*release_fn)(void *arg);  /* NULL: data was malloc'd by us */
        void *release_arg;
};

/* n unused. A bitstring has bits != 0: the last byte of the size bytes
 * holds only 'bits' significant (high) bits. */
struct nk_binary {
        struct nk_box h;
        struct nk_binobj *obj;  /* reference held by the env */
        const uint8_t *data;    /* obj->data + offset */
        size_t size;            /* whole bytes, including the partial one */
        uint8_t bits;           /* 0, or 1..7 bits used in the last byte */
};

/* n = number of id words (1..5). node is an atom term. */
struct nk_ref {
        struct nk_box h;
        ERL_NIF_TERM node;
        uint32_t creation;
        uint32_t ids[5];
};

struct nk_resource_type;

/* Resource object header; user data follows, 16-byte aligned. */
struct nk_resource {
        uint64_t magic;         /* NK_RESOURCE_MAGIC while alive */
        atomic_long refc;
        struct nk_resource_type *type;
        size_t size;
        uint64_t handle;        /* 0 until first sent to the runtime */
        uint64_t pad_;
        _Alignas(16) unsigned char data[];
};
#define NK_RESOURCE_MAGIC UINT64_C(0x6e6b7265736f7572)

struct nk_resource_term {
        struct nk_box h;
        struct nk_resource *res;        /* reference held by the env */
};

/* External (other node) pid or port. n unused. */
struct nk_extpid {
        struct nk_box h;
        ERL_NIF_TERM node;
        uint64_t id;            /* pid: id | serial << 32;  port: id */
        uint32_t creation;
};

/* n = number of ETF bytes (without version byte) */
struct nk_fun {
        struct nk_box h;
        uint8_t etf[];
};

static inline struct nk_box *nk_box_of(ERL_NIF_TERM t) { return (struct nk_box *) (uintptr_t) t; }
static inline ERL_NIF_TERM nk_box_term(const void *box) { return (ERL_NIF_TERM) (uintptr_t) box; }
static inline bool nk_is_kind(ERL_NIF_TERM t, enum nk_box_kind k)
{
        return nk_is_box(t) && nk_box_of(t)->kind == (uint32_t) k;
}

/* ---- interned pids and ports -------------------------------------------- */

/* A local pid as BEAM encodes it in NEW_PID_EXT. */
struct nk_pid_data {
        uint32_t node;          /* atom index of the node name */
        uint32_t id;
        uint32_t serial;
        uint32_t creation;
};

struct nk_port_data {
        uint32_t node;
        uint32_t creation;
        uint64_t id;
};

/* Interns a pid/port and returns its immediate term; NK_NONE on ENOMEM. */
ERL_NIF_TERM nk_pid_intern(const struct nk_pid_data *p);
ERL_NIF_TERM nk_port_intern(const struct nk_port_data *p);
/* The data behind an interned pid/port term (valid forever). */
const struct nk_pid_data *nk_pid_get(ERL_NIF_TERM pid);
const struct nk_port_data *nk_port_get(ERL_NIF_TERM port);

/* ---- atoms ---------------------------------------------------------------- */

/* Atom text is kept as UTF-8, at most 255 characters, as in BEAM. */
#define NK_ATOM_MAX_CHARS 255

/* Returns the atom for UTF-8 text, creating it; NK_NONE if the text is not
 * valid UTF-8, longer than 255 characters, or memory ran out. */
ERL_NIF_TERM nk_atom_utf8(const char *text, size_t len);
/* The same for Latin-1 text (each byte one character). */
ERL_NIF_TERM nk_atom_latin1(const char *text, size_t len);
/* Looks up without creating; NK_NONE if absent. */
ERL_NIF_TERM nk_atom_find_utf8(const char *text, size_t len);
/* UTF-8 text and byte length of an atom; text is NUL-terminated, lives forever. */
const char *nk_atom_text(ERL_NIF_TERM atom, size_t *ret_len);
/* Number of characters; true if every character is <= 255 (Latin-1). */
size_t nk_atom_chars(ERL_NIF_TERM atom, bool *ret_latin1);
/* Number of atoms in the table: the host reports how many it created. */
size_t nk_atom_count(void);

/* Atoms every module needs; made once at start-up by nk_atoms_init(). */
extern ERL_NIF_TERM nk_am_true, nk_am_false, nk_am_ok, nk_am_error, nk_am_undefined,
        nk_am_badarg, nk_am_nonode, nk_am_resource_node;
int nk_atoms_init(void);

/* ---- envs ------------------------------------------------------------------ */

struct nk_arena_chunk;
struct nk_call;            /* the call a process-bound env belongs to (server.c) */

struct enif_environment_t {
        struct nk_arena_chunk *chunks;  /* newest first */
        char *cur;                      /* bump pointer in chunks */
        char *end;

        /* references this env holds; dropped by clear/free */
        struct nk_binobj **bins;
        size_t nbins, capbins;
        struct nk_resource **ress;
        size_t nress, capress;

        bool process_bound;     /* a call's env: enif_self works */
        ERL_NIF_TERM self;      /* caller pid (interned) when process_bound */
        ERL_NIF_TERM exception; /* pending exception reason, NK_NONE if none */
        struct nk_call *call;   /* non-NULL during a call (send, schedule_nif) */
        void *priv;             /* library priv data (enif_priv_data) */
        int timeslice;          /* percent consumed (enif_consume_timeslice) */

        /* set by enif_schedule_nif, consumed by the server's call loop */
        ERL_NIF_TERM (*resched_fp)(ErlNifEnv *, int, const ERL_NIF_TERM[]);
        int resched_argc;
        ERL_NIF_TERM *resched_argv;     /* in this env's arena */
};

/* Allocates size bytes (8-aligned) in env's arena; NULL on ENOMEM. */
void *nk_env_alloc(ErlNifEnv *env, size_t size);
/* env keeps one reference to obj/res until cleared (takes ownership of one
 * reference the caller already holds). Return -ENOMEM on failure, in which
 * case the caller still owns its reference. */
int nk_env_hold_bin(ErlNifEnv *env, struct nk_binobj *obj);
int nk_env_hold_res(ErlNifEnv *env, struct nk_resource *res);
/* Drops every term and reference; the env can be reused. */
void nk_env_reset(ErlNifEnv *env);
/* Initialises an env in place (for envs embedded in other structs). */
void nk_env_init(ErlNifEnv *env);
/* Frees everything an env owns; the struct itself stays the caller's. */
void nk_env_destroy(ErlNifEnv *env);

/* ---- constructors used across the host ----------------------------------- */

ERL_NIF_TERM nk_make_int64(ErlNifEnv *env, int64_t v);
ERL_NIF_TERM nk_make_uint64(ErlNifEnv *env, uint64_t v);
/* digits: little-endian magnitude; strips high zero bytes and returns a small
 * integer when it fits (canonical form). */
ERL_NIF_TERM nk_make_big(ErlNifEnv *env, bool negative, const uint8_t *digits, size_t n);
ERL_NIF_TERM nk_make_float(ErlNifEnv *env, double d);
ERL_NIF_TERM nk_make_tuple_n(ErlNifEnv *env, size_t arity, const ERL_NIF_TERM *elems);
ERL_NIF_TERM nk_make_cons(ErlNifEnv *env, ERL_NIF_TERM head, ERL_NIF_TERM tail);
/* Copies size bytes into a new binary term; data may be NULL (zero-filled). */
ERL_NIF_TERM nk_make_binary_copy(ErlNifEnv *env, const void *data, size_t size);
/* Binary term over part of obj; takes a new reference to obj. */
ERL_NIF_TERM nk_make_binary_of(ErlNifEnv *env, struct nk_binobj *obj, size_t off, size_t size,
                               uint8_t bits);
/* Map from unsorted pairs; fails (NK_NONE) on a duplicate key when
 * dup_is_error, else the last value wins. */
ERL_NIF_TERM nk_make_map(ErlNifEnv *env, size_t n, const ERL_NIF_TERM *keys,
                         const ERL_NIF_TERM *vals, bool dup_is_error);
ERL_NIF_TERM nk_make_resource_term(ErlNifEnv *env, struct nk_resource *res);

/* Integer value of a small or big term, if it fits. */
bool nk_get_int64(ERL_NIF_TERM t, int64_t *ret);
bool nk_get_uint64(ERL_NIF_TERM t, uint64_t *ret);
bool nk_is_integer(ERL_NIF_TERM t);

/* Deep copy into another env (enif_make_copy). */
ERL_NIF_TERM nk_copy_term(ErlNifEnv *dst, ERL_NIF_TERM t);

/* ---- binaries ----------------------------------------------------------- */

struct nk_binobj *nk_binobj_new(size_t size);
struct nk_binobj *nk_binobj_external(void *data, size_t size, void (*release_fn)(void *), void *arg);
void nk_binobj_keep(struct nk_binobj *obj);
void nk_binobj_release(struct nk_binobj *obj);

/* ---- resources ----------------------------------------------------------- */

void nk_resource_keep(struct nk_resource *res);
void nk_resource_release(struct nk_resource *res);
/*
 * Handles: the name under which a resource crosses to the runtime (as a
 * reference of node 'nifkit_resource@nohost', ids {low 32 bits, high 32
 * bits, 0}). The same object always gets the same handle. The handle table
 * holds one reference until the runtime says it dropped the handle.
 */
uint64_t nk_resource_handle(struct nk_resource *res);           /* 0 on ENOMEM */
struct nk_resource *nk_resource_by_handle(uint64_t handle);     /* new reference, or NULL */
void nk_resource_handle_drop(uint64_t handle);
/* Counted release: every nk_resource_handle() call counts one copy given
 * out; this takes back count of them and drops the table's reference once
 * none is left, so that a copy sent while the runtime released the others
 * is not lost. */
void nk_resource_handle_release(uint64_t handle, uint64_t count);
static inline struct nk_resource *nk_resource_of_data(void *obj)
{
        return (struct nk_resource *) ((char *) obj - offsetof(struct nk_resource, data));
}

/* ---- order and hashing (order.c) ---------------------------------------- */

/* Erlang term order: <0, 0, >0. Numbers compare by value (1 == 1.0). */
int nk_compare(ERL_NIF_TERM a, ERL_NIF_TERM b);
/* Exact order used for map keys: 1 and 1.0 differ, integers sort before floats. */
int nk_map_key_cmp(ERL_NIF_TERM a, ERL_NIF_TERM b);
/* Structural identity (=:=). */
bool nk_identical(ERL_NIF_TERM a, ERL_NIF_TERM b);
/* erlang:phash2/1 (full 32-bit value, before the range reduction). */
uint32_t nk_phash2(ERL_NIF_TERM t);
/* A well-mixed 64-bit hash for ERL_NIF_INTERNAL_HASH. */
uint64_t nk_internal_hash(ERL_NIF_TERM t, uint64_t salt);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The global atom table, and the interned pid and port tables.
 *
 * Entries never move and never die, as in BEAM: an atom or pid term is an
 * index, and the text behind it must stay valid for every thread at any time
 * without a lock. Entries therefore live in fixed pages that are published
 * with a release store before the index that refers to them is returned;
 * only the name lookup (a hash index) takes a lock.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "term.h"
#include "utf8.h"

#define PAGE_BITS 10
#define PAGE_SIZE (1u << PAGE_BITS)
#define MAX_PAGES 4096u            /* 4M entries per table */

struct atom_entry {
        uint32_t hash;
        uint32_t len;           /* bytes of UTF-8 */
        uint32_t nchars;
        bool latin1;
        char text[];
};

/* A table of immutable entries addressed by index, with a hash index for
 * lookup by content. Shared by atoms, pids and ports. */
struct intern_table {
        pthread_mutex_t lock;
        _Atomic(void **) pages[MAX_PAGES];
        uint32_t count;
        uint32_t *slots;        /* hash index: entry index + 1, 0 = empty */
        uint32_t nslots;        /* power of two */
};

static struct intern_table atoms = { .lock = PTHREAD_MUTEX_INITIALIZER };
static struct intern_table pids = { .lock = PTHREAD_MUTEX_INITIALIZER };
static struct intern_table ports = { .lock = PTHREAD_MUTEX_INITIALIZER };

ERL_NIF_TERM nk_am_true, nk_am_false, nk_am_ok, nk_am_error, nk_am_undefined, nk_am_badarg,
        nk_am_nonode, nk_am_resource_node;

static inline void *table_get(struct intern_table *t, uint32_t index)
{
        void **page = atomic_load_explicit(&t->pages[index >> PAGE_BITS], memory_order_acquire);
        return page ? page[index & (PAGE_SIZE - 1)] : NULL;
}

static uint32_t fnv1a(const void *p, size_t n)
{
        const uint8_t *b = p;
        uint32_t h = 2166136261u;
        for (size_t i = 0; i < n; i++)
                h = (h ^ b[i]) * 16777619u;
        return h;
}

static int table_grow_index(struct intern_table *t,
                            uint32_t (*hash_of)(const void *entry))
{
        uint32_t n = t->nslots ? t->nslots * 2 : 1024;
        uint32_t *slots = calloc(n, sizeof(*slots));
        if (!slots)
                return -ENOMEM;
        for (uint32_t i = 0; i < t->count; i++) {
                uint32_t s = hash_of(table_get(t, i)) & (n - 1);
                while (slots[s])
                        s = (s + 1) & (n - 1);
                slots[s] = i + 1;
        }
        free(t->slots);
        t->slots = slots;
        t->nslots = n;
        return 0;
}

/* Appends entry (which the table then owns); caller holds the lock. */
static int table_append(struct intern_table *t, void *entry, uint32_t hash,
                        uint32_t (*hash_of)(const void *entry), uint32_t *ret_index)
{
        if (t->count >= MAX_PAGES * PAGE_SIZE)
                return -ENOSPC;
        if ((t->count + 1) * 2 > t->nslots) {
                int r = table_grow_index(t, hash_of);
                if (r < 0)
                        return r;
        }
        uint32_t index = t->count;
        void **page = atomic_load_explicit(&t->pages[index >> PAGE_BITS], memory_order_relaxed);
        if (!page) {
                page = calloc(PAGE_SIZE, sizeof(void *));
                if (!page)
                        return -ENOMEM;
                atomic_store_explicit(&t->pages[index >> PAGE_BITS], page, memory_order_release);
        }
        /* The entry is visible to readers only through the index returned
         * below; the lock release orders these stores before it. */
        page[index & (PAGE_SIZE - 1)] = entry;
        uint32_t s = hash & (t->nslots - 1);
        while (t->slots[s])
                s = (s + 1) & (t->nslots - 1);
        t->slots[s] = index + 1;
        t->count++;
        *ret_index = index;
        return 0;
}

/* ---- atoms ------------------------------------------------------------------ */

static uint32_t atom_hash_of(const void *e)
{
        return ((const struct atom_entry *) e)->hash;
}

static ERL_NIF_TERM atom_lookup_locked(const char *text, size_t len, uint32_t hash)
{
        if (!atoms.nslots)
                return NK_NONE;
        for (uint32_t s = hash & (atoms.nslots - 1); atoms.slots[s]; s = (s + 1) & (atoms.nslots - 1)) {
                const struct atom_entry *e = table_get(&atoms, atoms.slots[s] - 1);
                if (e->hash == hash && e->len == len && memcmp(e->text, text, len) == 0)
                        return nk_make_atom_term(atoms.slots[s] - 1);
        }
        return NK_NONE;
}

static ERL_NIF_TERM atom_intern(const char *text, size_t len, bool create)
{
        bool latin1;
        long nchars = nk_utf8_chars((const uint8_t *) text, len, &latin1);
        if (nchars < 0 || nchars > NK_ATOM_MAX_CHARS)
                return NK_NONE;
        uint32_t hash = fnv1a(text, len);

        pthread_mutex_lock(&atoms.lock);
        ERL_NIF_TERM t = atom_lookup_locked(text, len, hash);
        if (t == NK_NONE && create) {
                struct atom_entry *e = malloc(sizeof(*e) + len + 1);
                uint32_t index;
                if (e) {
                        e->hash = hash;
                        e->len = (uint32_t) len;
                        e->nchars = (uint32_t) nchars;
                        e->latin1 = latin1;
                        memcpy(e->text, text, len);
                        e->text[len] = '\0';
                        if (table_append(&atoms, e, hash, atom_hash_of, &index) == 0)
                                t = nk_make_atom_term(index);
                        else
                                free(e);
                }
        }
        pthread_mutex_unlock(&atoms.lock);
        return t;
}

ERL_NIF_TERM nk_atom_utf8(const char *text, size_t len)
{
        return atom_intern(text, len, true);
}

ERL_NIF_TERM nk_atom_find_utf8(const char *text, size_t len)
{
        return atom_intern(text, len, false);
}

ERL_NIF_TERM nk_atom_latin1(const char *text, size_t len)
{
        if (len > NK_ATOM_MAX_CHARS)
                return NK_NONE;
        char buf[NK_ATOM_MAX_CHARS * 2];
        size_t n = 0;
        for (size_t i = 0; i < len; i++) {
                uint8_t c = (uint8_t) text[i];
                if (c < 0x80) {
                        buf[n++] = (char) c;
                } else {
                        buf[n++] = (char) (0xc0 | c >> 6);
                        buf[n++] = (char) (0x80 | (c & 0x3f));
                }
        }
        return nk_atom_utf8(buf, n);
}

const char *nk_atom_text(ERL_NIF_TERM atom, size_t *ret_len)
{
        const struct atom_entry *e = table_get(&atoms, nk_atom_index(atom));
        if (!e)
                return NULL;
        if (ret_len)
                *ret_len = e->len;
        return e->text;
}

size_t nk_atom_chars(ERL_NIF_TERM atom, bool *ret_latin1)
{
        const struct atom_entry *e = table_get(&atoms, nk_atom_index(atom));
        if (!e)
                return 0;
        if (ret_latin1)
                *ret_latin1 = e->latin1;
        return e->nchars;
}

size_t nk_atom_count(void)
{
        pthread_mutex_lock(&atoms.lock);
        size_t n = atoms.count;
        pthread_mutex_unlock(&atoms.lock);
        return n;
}

static pthread_once_t atoms_once = PTHREAD_ONCE_INIT;
static int atoms_init_result;

static void atoms_init_once(void)
{
        static const struct {
                ERL_NIF_TERM *term;
                const char *text;
        } predefined[] = {
                { &nk_am_false, "false" },
                { &nk_am_true, "true" },
                { &nk_am_ok, "ok" },
                { &nk_am_error, "error" },
                { &nk_am_undefined, "undefined" },
                { &nk_am_badarg, "badarg" },
                { &nk_am_nonode, "nonode@nohost" },
                { &nk_am_resource_node, "nifkit_resource@nohost" },
        };
        for (size_t i = 0; i < sizeof(predefined) / sizeof(predefined[0]); i++) {
                *predefined[i].term = nk_atom_utf8(predefined[i].text, strlen(predefined[i].text));
                if (*predefined[i].term == NK_NONE)
                        atoms_init_result = -ENOMEM;
        }
}

int nk_atoms_init(void)
{
        pthread_once(&atoms_once, atoms_init_once);
        return atoms_init_result;
}

/* Runs before any NIF or test code: the predefined atoms are plain globals. */
__attribute__((constructor)) static void atoms_ctor(void)
{
        (void) nk_atoms_init();
}

/* ---- pids and ports ------------------------------------------------------- */

static uint32_t pid_hash_of(const void *e)
{
        return fnv1a(e, sizeof(struct nk_pid_data));
}

static uint32_t port_hash_of(const void *e)
{
        return fnv1a(e, sizeof(struct nk_port_data));
}

/* Interns a fixed-size record; entries are compared bytewise, so callers
 * pass zero-initialised structs without padding holes. */
static int intern_record(struct intern_table *t, const void *rec, size_t size,
                         uint32_t (*hash_of)(const void *), uint32_t *ret_index)
{
        uint32_t hash = hash_of(rec);
        int r = 0;
        pthread_mutex_lock(&t->lock);
        if (t->nslots) {
                for (uint32_t s = hash & (t->nslots - 1); t->slots[s]; s = (s + 1) & (t->nslots - 1)) {
                        if (memcmp(table_get(t, t->slots[s] - 1), rec, size) == 0) {
                                *ret_index = t->slots[s] - 1;
                                goto out;
                        }
                }
        }
        void *copy = malloc(size);
        if (!copy) {
                r = -ENOMEM;
                goto out;
        }
        memcpy(copy, rec, size);
        r = table_append(t, copy, hash, hash_of, ret_index);
        if (r < 0)
                free(copy);
out:
        pthread_mutex_unlock(&t->lock);
        return r;
}

ERL_NIF_TERM nk_pid_intern(const struct nk_pid_data *p)
{
        struct nk_pid_data key = { p->node, p->id, p->serial, p->creation };
        uint32_t index;
        if (intern_record(&pids, &key, sizeof(key), pid_hash_of, &index) < 0)
                return NK_NONE;
        return ((ERL_NIF_TERM) index << 3) | NK_TAG_PID;
}

ERL_NIF_TERM nk_port_intern(const struct nk_port_data *p)
{
        struct nk_port_data key;
        memset(&key, 0, sizeof(key));
        key.node = p->node;
        key.creation = p->creation;
        key.id = p->id;
        uint32_t index;
        if (intern_record(&ports, &key, sizeof(key), port_hash_of, &index) < 0)
                return NK_NONE;
        return ((ERL_NIF_TERM) index << 3) | NK_TAG_PORT;
}

const struct nk_pid_data *nk_pid_get(ERL_NIF_TERM pid)
{
        return nk_is_pid(pid) ? table_get(&pids, (uint32_t) (pid >> 3)) : NULL;
}

const struct nk_port_data *nk_port_get(ERL_NIF_TERM port)
{
        return nk_is_port(port) ? table_get(&ports, (uint32_t) (port >> 3)) : NULL;
}

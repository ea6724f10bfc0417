/* idx.h -- an open-addressing index from 64-bit keys to slots of a
 * caller's array (linear probing, backward-shift deletion, no tombstones).
 *
 * The index is a power-of-two table of uint32_t holding slot + 1 (0 =
 * empty); the keys stay in the caller's entries and are read back through
 * `key(ctx, slot)`.  Everything is static inline: with a constant key
 * function the compiler inlines the probe, so the callers' hot paths
 * (feature lookups, pending buffers) pay no indirect call.  Size the table
 * at least twice the number of live entries.  Generic: no service code.
 * Threads: the caller's (a table is owned by one thread). */
#ifndef RS_IDX_H
#define RS_IDX_H

#include <stdint.h>

typedef uint64_t (*rs_idx_key_fn)(const void *ctx, uint32_t slot);

/* Table position holding `key`, or -1. */
static inline int64_t rs_idx_pos(const uint32_t *tab, uint32_t mask,
                                 uint64_t key, rs_idx_key_fn kf,
                                 const void *ctx) {
    uint32_t i = (uint32_t)key & mask;
    for (;;) {
        uint32_t v = tab[i];
        if (!v) return -1;
        if (kf(ctx, v - 1) == key) return i;
        i = (i + 1) & mask;
    }
}

/* Index `slot` under `key` (the key must not be present). */
static inline void rs_idx_insert(uint32_t *tab, uint32_t mask, uint64_t key,
                                 uint32_t slot) {
    uint32_t i = (uint32_t)key & mask;
    while (tab[i]) i = (i + 1) & mask;
    tab[i] = slot + 1;
}

/* Remove table position i, shifting later entries of its probe run back so
 * lookups never need tombstones. */
static inline void rs_idx_unindex(uint32_t *tab, uint32_t mask, uint32_t i,
                                  rs_idx_key_fn kf, const void *ctx) {
    uint32_t j = i;
    for (;;) {
        tab[i] = 0;
        for (;;) {
            j = (j + 1) & mask;
            if (!tab[j]) return;
            uint32_t k = (uint32_t)kf(ctx, tab[j] - 1) & mask;
            int stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
            if (!stays) break;
        }
        tab[i] = tab[j];
        i = j;
    }
}

#endif /* RS_IDX_H */

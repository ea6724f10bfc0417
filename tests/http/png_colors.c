/* png_colors.c -- count the pixels of given colours in a PNG screenshot.
 *
 *   rs_png_colors FILE.png RRGGBB[:TOL] ...
 *
 * Prints "WIDTHxHEIGHT" then, per colour, "RRGGBB N" (pixels within TOL,
 * default 40, summed absolute RGB difference), and "distinct N" (distinct
 * colours, capped).  Exit 0, or 1 for an unreadable / unsupported file.
 *
 * Self-contained on purpose (no zlib: not a project dependency): a small
 * inflate (RFC 1951) and the PNG subset Chromium writes -- 8-bit RGB or
 * RGBA, not interlaced.  Test tool only; input is our own screenshot.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- inflate */

typedef struct inf_s {
    const uint8_t *in;
    size_t inlen, pos;
    uint32_t bits;
    int nbits;
    uint8_t *out;
    size_t outlen, outcap;
    int err;
} inf_t;

typedef struct huff_s {
    uint16_t counts[16];
    uint16_t symbols[320];
} huff_t;

static int inf_bit(inf_t *s) {
    if (!s->nbits) {
        if (s->pos >= s->inlen) {
            s->err = 1;
            return 0;
        }
        s->bits = s->in[s->pos++];
        s->nbits = 8;
    }
    int b = (int)(s->bits & 1);
    s->bits >>= 1;
    s->nbits--;
    return b;
}

static uint32_t inf_bits(inf_t *s, int n) {
    uint32_t v = 0;
    for (int i = 0; i < n; i++) v |= (uint32_t)inf_bit(s) << i;
    return v;
}

static void inf_put(inf_t *s, uint8_t c) {
    if (s->outlen == s->outcap) {
        s->outcap = s->outcap ? s->outcap * 2 : 1 << 20;
        s->out = realloc(s->out, s->outcap);
        if (!s->out) {
            s->err = 1;
            s->outcap = s->outlen = 0;
            return;
        }
    }
    s->out[s->outlen++] = c;
}

static void huff_build(huff_t *h, const uint8_t *lens, int n) {
    uint16_t offs[16];
    memset(h->counts, 0, sizeof(h->counts));
    for (int i = 0; i < n; i++) h->counts[lens[i]]++;
    h->counts[0] = 0;
    offs[1] = 0;
    for (int i = 1; i < 15; i++) offs[i + 1] = offs[i] + h->counts[i];
    for (int i = 0; i < n; i++)
        if (lens[i]) h->symbols[offs[lens[i]]++] = (uint16_t)i;
}

static int huff_decode(inf_t *s, const huff_t *h) {
    int code = 0, first = 0, index = 0;
    for (int len = 1; len < 16; len++) {
        code |= inf_bit(s);
        int count = h->counts[len];
        if (code - count < first) return h->symbols[index + (code - first)];
        index += count;
        first += count;
        first <<= 1;
        code <<= 1;
        if (s->err) return -1;
    }
    s->err = 1;
    return -1;
}

static const uint16_t len_base[] = {3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17,
                                    19, 23, 27, 31, 35, 43, 51, 59, 67, 83,
                                    99, 115, 131, 163, 195, 227, 258};
static const uint8_t len_extra[] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                    2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
static const uint16_t dist_base[] = {1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49,
                                     65, 97, 129, 193, 257, 385, 513, 769,
                                     1025, 1537, 2049, 3073, 4097, 6145,
                                     8193, 12289, 16385, 24577};
static const uint8_t dist_extra[] = {0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6,
                                     6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12,
                                     12, 13, 13};

static void inf_codes(inf_t *s, const huff_t *lh, const huff_t *dh) {
    for (;;) {
        int sym = huff_decode(s, lh);
        if (s->err) return;
        if (sym < 256) {
            inf_put(s, (uint8_t)sym);
        } else if (sym == 256) {
            return;
        } else {
            sym -= 257;
            if (sym >= 29) { s->err = 1; return; }
            size_t len = len_base[sym] + inf_bits(s, len_extra[sym]);
            int ds = huff_decode(s, dh);
            if (ds < 0 || ds >= 30) { s->err = 1; return; }
            size_t dist = dist_base[ds] + inf_bits(s, dist_extra[ds]);
            if (dist > s->outlen) { s->err = 1; return; }
            for (size_t i = 0; i < len && !s->err; i++)
                inf_put(s, s->out[s->outlen - dist]);
        }
    }
}

static void inf_dynamic(inf_t *s) {
    static const uint8_t order[19] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5,
                                      11, 4, 12, 3, 13, 2, 14, 1, 15};
    uint8_t lens[320];
    huff_t lh, dh;
    int hlit = (int)inf_bits(s, 5) + 257, hdist = (int)inf_bits(s, 5) + 1,
        hclen = (int)inf_bits(s, 4) + 4;
    memset(lens, 0, sizeof(lens));
    for (int i = 0; i < hclen; i++) lens[order[i]] = (uint8_t)inf_bits(s, 3);
    huff_build(&lh, lens, 19);
    int n = 0;
    while (n < hlit + hdist && !s->err) {
        int sym = huff_decode(s, &lh), rep = 0;
        uint8_t val = 0;
        if (sym < 16) { lens[n++] = (uint8_t)sym; continue; }
        if (sym == 16) {
            if (!n) { s->err = 1; return; }
            val = lens[n - 1];
            rep = 3 + (int)inf_bits(s, 2);
        } else if (sym == 17) {
            rep = 3 + (int)inf_bits(s, 3);
        } else {
            rep = 11 + (int)inf_bits(s, 7);
        }
        if (n + rep > hlit + hdist) { s->err = 1; return; }
        while (rep--) lens[n++] = val;
    }
    huff_build(&lh, lens, hlit);
    huff_build(&dh, lens + hlit, hdist);
    inf_codes(s, &lh, &dh);
}

static void inf_fixed(inf_t *s) {
    uint8_t lens[320];
    huff_t lh, dh;
    int i = 0;
    for (; i < 144; i++) lens[i] = 8;
    for (; i < 256; i++) lens[i] = 9;
    for (; i < 280; i++) lens[i] = 7;
    for (; i < 288; i++) lens[i] = 8;
    huff_build(&lh, lens, 288);
    for (i = 0; i < 30; i++) lens[i] = 5;
    huff_build(&dh, lens, 30);
    inf_codes(s, &lh, &dh);
}

/* zlib stream -> malloc'd bytes */
static uint8_t *inflate_zlib(const uint8_t *in, size_t len, size_t *outlen) {
    inf_t s;
    memset(&s, 0, sizeof(s));
    if (len < 2) return NULL;
    s.in = in;
    s.inlen = len;
    s.pos = 2; /* CMF, FLG */
    int last;
    do {
        last = inf_bit(&s);
        int type = (int)inf_bits(&s, 2);
        if (type == 0) {
            s.nbits = 0;
            if (s.pos + 4 > s.inlen) { s.err = 1; break; }
            size_t n = s.in[s.pos] | (size_t)s.in[s.pos + 1] << 8;
            s.pos += 4;
            if (s.pos + n > s.inlen) { s.err = 1; break; }
            for (size_t i = 0; i < n; i++) inf_put(&s, s.in[s.pos + i]);
            s.pos += n;
        } else if (type == 1) {
            inf_fixed(&s);
        } else if (type == 2) {
            inf_dynamic(&s);
        } else {
            s.err = 1;
        }
    } while (!last && !s.err);
    if (s.err) {
        free(s.out);
        return NULL;
    }
    *outlen = s.outlen;
    return s.out;
}

/* -------------------------------------------------------------------- PNG */

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

static int paeth(int a, int b, int c) {
    int p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);
    return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: rs_png_colors FILE.png RRGGBB[:TOL]...\n");
        return 2;
    }
    FILE *fp = fopen(argv[1], "rb");
    if (!fp) { perror(argv[1]); return 1; }
    fseek(fp, 0, SEEK_END);
    long fl = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *f = malloc((size_t)fl);
    if (!f || fread(f, 1, (size_t)fl, fp) != (size_t)fl) return 1;
    fclose(fp);
    if (fl < 33 || memcmp(f, "\x89PNG\r\n\x1a\n", 8)) {
        fprintf(stderr, "%s: not a PNG\n", argv[1]);
        return 1;
    }
    uint32_t w = 0, h = 0;
    int ctype = -1, depth = 0, interlace = 0;
    uint8_t *idat = NULL;
    size_t idlen = 0;
    for (size_t p = 8; p + 12 <= (size_t)fl;) {
        uint32_t n = be32(f + p);
        const uint8_t *t = f + p + 4, *d = f + p + 8;
        if (p + 12 + n > (size_t)fl) break;
        if (!memcmp(t, "IHDR", 4)) {
            w = be32(d);
            h = be32(d + 4);
            depth = d[8];
            ctype = d[9];
            interlace = d[12];
        } else if (!memcmp(t, "IDAT", 4)) {
            idat = realloc(idat, idlen + n);
            memcpy(idat + idlen, d, n);
            idlen += n;
        } else if (!memcmp(t, "IEND", 4)) {
            break;
        }
        p += 12 + n;
    }
    int bpp = ctype == 2 ? 3 : ctype == 6 ? 4 : 0;
    if (!bpp || depth != 8 || interlace || !w || !h || w > 20000 || h > 20000) {
        fprintf(stderr, "%s: unsupported PNG (type %d, depth %d)\n", argv[1],
                ctype, depth);
        return 1;
    }
    size_t rawlen = 0, stride = (size_t)w * (size_t)bpp;
    uint8_t *raw = inflate_zlib(idat, idlen, &rawlen);
    if (!raw || rawlen < (stride + 1) * h) {
        fprintf(stderr, "%s: corrupt image data\n", argv[1]);
        return 1;
    }
    /* unfilter in place: row y starts at raw + y*(stride+1) + 1 */
    for (uint32_t y = 0; y < h; y++) {
        uint8_t *row = raw + (size_t)y * (stride + 1);
        uint8_t *cur = row + 1;
        const uint8_t *prev = y ? raw + (size_t)(y - 1) * (stride + 1) + 1 : NULL;
        for (size_t i = 0; i < stride; i++) {
            int a = i >= (size_t)bpp ? cur[i - (size_t)bpp] : 0;
            int b = prev ? prev[i] : 0;
            int c = prev && i >= (size_t)bpp ? prev[i - (size_t)bpp] : 0;
            switch (row[0]) {
            case 0: break;
            case 1: cur[i] = (uint8_t)(cur[i] + a); break;
            case 2: cur[i] = (uint8_t)(cur[i] + b); break;
            case 3: cur[i] = (uint8_t)(cur[i] + ((a + b) >> 1)); break;
            case 4: cur[i] = (uint8_t)(cur[i] + paeth(a, b, c)); break;
            default: fprintf(stderr, "bad filter %d\n", row[0]); return 1;
            }
        }
    }
    printf("%ux%u\n", w, h);
    /* distinct colours (capped), via a small open-addressing set */
    enum { SET = 1 << 16 };
    uint32_t *set = calloc(SET, sizeof(uint32_t));
    int distinct = 0;
    for (uint32_t y = 0; y < h && distinct < SET / 2; y++)
        for (uint32_t x = 0; x < w && distinct < SET / 2; x++) {
            const uint8_t *px = raw + (size_t)y * (stride + 1) + 1 + x * bpp;
            uint32_t v = (uint32_t)px[0] << 16 | (uint32_t)px[1] << 8 | px[2];
            v |= 0x1000000u;
            uint32_t k = (v * 2654435761u) & (SET - 1);
            while (set[k] && set[k] != v) k = (k + 1) & (SET - 1);
            if (!set[k]) { set[k] = v; distinct++; }
        }
    for (int a = 2; a < argc; a++) {
        unsigned int rgb = 0;
        int tol = 40;
        if (sscanf(argv[a], "%6x:%d", &rgb, &tol) < 1) {
            fprintf(stderr, "bad colour '%s'\n", argv[a]);
            return 2;
        }
        int r0 = (int)(rgb >> 16), g0 = (int)(rgb >> 8 & 255), b0 = (int)(rgb & 255);
        long n = 0;
        for (uint32_t y = 0; y < h; y++)
            for (uint32_t x = 0; x < w; x++) {
                const uint8_t *px = raw + (size_t)y * (stride + 1) + 1 + x * bpp;
                if (abs(px[0] - r0) + abs(px[1] - g0) + abs(px[2] - b0) <= tol) n++;
            }
        printf("%06x %ld\n", rgb, n);
    }
    printf("distinct %d\n", distinct);
    free(set);
    free(raw);
    free(idat);
    free(f);
    return 0;
}

/* http.c -- the read-only HTTP API (see http.h).
 *
 * Design: libmicrohttpd with an internal thread pool; the access handler
 * answers on its first call (GET has no body; anything else is refused
 * before its body is read).  The URL reaches the handler still
 * percent-encoded (a no-op unescape callback): the path is split on "/"
 * first and each segment decoded on its own, so an id may hold "/" or "?".
 * Query values are decoded the same way.
 *
 * Redis: one rs_sink_redis_t per server thread, created on first use and
 * kept in thread-specific data whose destructor closes it when
 * MHD_stop_daemon joins the thread.  Nothing is shared between threads but
 * the immutable configuration and the route table (under a mutex).
 *
 * The HTML page is built by rs_http_render_view (pure): inline CSS and
 * SVG, no script, no external asset, served with a CSP that forbids
 * everything else.  Every string from the record goes through
 * rs_http_buf_html.
 */
#include "scoring/http.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#define RS_HTTP_MAX_ROUTES 8
#define RS_HTTP_URL_MAX 8192
#define RS_HTTP_LIMIT_DEF 100
#define RS_HTTP_LIMIT_MAX 1000
#define RS_HTTP_BODY_MAX (64u << 20) /* runaway guard for one response */

#define RS_CT_JSON "application/json"
#define RS_CT_TEXT "text/plain; charset=utf-8"
#define RS_CT_HTML "text/html; charset=utf-8"

/* Append a string literal. */
#define RS_HTTP_LIT(b, s) rs_http_buf_append((b), (s), sizeof(s) - 1)

/* ----------------------------------------------------------------- config */

static const rs_conf_field_t rs_http_fields[] = {
    {"enabled", RS_CONF_BOOL, "false", offsetof(rs_http_conf_t, enabled), 0,
     "start the HTTP API inside `serve` (`riskstream api` always serves)",
     NULL, 0, 0},
    {"bind", RS_CONF_STRING, "127.0.0.1", offsetof(rs_http_conf_t, bind),
     sizeof(((rs_http_conf_t *)0)->bind),
     "listen address, an IPv4 or IPv6 literal", NULL, 0, 0},
    {"port", RS_CONF_INT, "8080", offsetof(rs_http_conf_t, port), 0,
     "listen port; 0 = ephemeral (the bound port is printed)", NULL, 0,
     65535},
    {"token_env", RS_CONF_STRING, "", offsetof(rs_http_conf_t, token_env),
     sizeof(((rs_http_conf_t *)0)->token_env),
     "environment variable holding the bearer token; empty = no auth", NULL,
     0, 0},
    {"threads", RS_CONF_INT, "4", offsetof(rs_http_conf_t, threads), 0,
     "server threads, each with its own Redis connection", NULL, 1, 64},
};

const rs_conf_field_t *rs_http_conf_fields(int *n) {
    *n = (int)RS_ARRAY_LEN(rs_http_fields);
    return rs_http_fields;
}

void rs_http_conf_section(rs_conf_section_t *sec, rs_http_conf_t *conf) {
    memset(sec, 0, sizeof(*sec));
    sec->name = RS_HTTP_CONF_SECTION;
    sec->desc = "HTTP API: score lookups and the per-decision page";
    sec->fields = rs_http_fields;
    sec->nfields = (int)RS_ARRAY_LEN(rs_http_fields);
    sec->base = conf;
}

void rs_http_conf_init(rs_http_conf_t *conf) {
    char errstr[256];
    rs_conf_section_t sec;
    memset(conf, 0, sizeof(*conf));
    rs_http_conf_section(&sec, conf);
    rs_conf_t *reg = rs_conf_new();
    if (rs_conf_add_section(reg, &sec, errstr, sizeof(errstr)) != RS_OK)
        rs_error("http", "config table: %s", errstr);
    rs_conf_destroy(reg);
}

/* ----------------------------------------------------------------- buffer */

struct rs_http_buf_s {
    char *p;       /* malloc'd: handed to MHD, which free()s it */
    size_t len, cap;
    int overflow;  /* RS_HTTP_BODY_MAX reached: further appends dropped */
};

void rs_http_buf_append(rs_http_buf_t *b, const char *s, size_t len) {
    if (b->overflow) return;
    if (b->len + len + 1 > RS_HTTP_BODY_MAX) {
        b->overflow = 1;
        return;
    }
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + len + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            rs_error("http", "out of memory (%zu bytes)", cap);
            abort();
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, len);
    b->len += len;
    b->p[b->len] = '\0';
}

void rs_http_buf_printf(rs_http_buf_t *b, const char *fmt, ...) {
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof(tmp)) {
        rs_http_buf_append(b, tmp, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) return;
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    rs_http_buf_append(b, big, (size_t)n);
    free(big);
}

void rs_http_buf_html(rs_http_buf_t *b, const char *s) {
    const char *run = s;
    for (; *s; s++) {
        const char *rep = NULL;
        switch (*s) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&#39;"; break;
        default: continue;
        }
        rs_http_buf_append(b, run, (size_t)(s - run));
        rs_http_buf_append(b, rep, strlen(rep));
        run = s + 1;
    }
    rs_http_buf_append(b, run, (size_t)(s - run));
}

/* A JSON string literal (quotes included). */
static void rs_http_buf_jstr(rs_http_buf_t *b, const char *s) {
    RS_HTTP_LIT(b, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            rs_http_buf_append(b, e, 2);
        } else if (c < 0x20) {
            rs_http_buf_printf(b, "\\u%04x", c);
        } else {
            rs_http_buf_append(b, (const char *)&c, 1);
        }
    }
    RS_HTTP_LIT(b, "\"");
}

rs_http_buf_t *rs_http_buf_new(void) { return rs_calloc(1, sizeof(rs_http_buf_t)); }
const char *rs_http_buf_data(const rs_http_buf_t *b) { return b->p ? b->p : ""; }
size_t rs_http_buf_len(const rs_http_buf_t *b) { return b->len; }
void rs_http_buf_destroy(rs_http_buf_t *b) {
    if (!b) return;
    free(b->p);
    rs_free(b);
}

/* ------------------------------------------------------------------ utils */

static int rs_http_hex(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decode src[0..len) into out[size] ('+' as space if plus).
 * -1 for a bad escape, an encoded NUL or no room. */
static int rs_http_pct_decode(const char *src, size_t len, int plus, char *out,
                              size_t size) {
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)src[i];
        if (c == '%') {
            if (i + 2 >= len) return -1;
            int h = rs_http_hex(src[i + 1]), l = rs_http_hex(src[i + 2]);
            if (h < 0 || l < 0) return -1;
            c = h * 16 + l;
            if (c == 0) return -1;
            i += 2;
        } else if (c == '+' && plus) {
            c = ' ';
        }
        if (o + 1 >= size) return -1;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return (int)o;
}

int rs_http_since_parse(const char *s, int64_t now_ms, int64_t *out_ms) {
    if (!s || !*s) return -1;
    int digits = 1;
    for (const char *p = s; *p; p++)
        if (!isdigit((unsigned char)*p)) digits = 0;
    int64_t d;
    if (!digits && rs_duration_parse(s, &d) == 0) {
        *out_ms = now_ms - d;
        return 0;
    }
    return rs_time_parse(s, strlen(s), out_ms);
}

/* Constant-time (in the length of `secret`) comparison. */
static int rs_http_ct_eq(const char *given, size_t glen, const char *secret,
                         size_t slen) {
    unsigned char d = (unsigned char)(glen != slen);
    for (size_t i = 0; i < slen; i++)
        d |= (unsigned char)((i < glen ? given[i] : 0) ^ secret[i]);
    return d == 0;
}

static const char *rs_http_num(char *buf, size_t size, const char *fmt,
                               double v) {
    if (!isfinite(v)) return "n/a";
    snprintf(buf, size, fmt, v);
    return buf;
}

/* "3h12m", "45s", "2d4h" */
static void rs_http_ago(int64_t ms, char *buf, size_t size) {
    if (ms < 0) ms = -ms;
    int64_t s = ms / 1000, m = s / 60, h = m / 60, d = h / 24;
    /* two units, the second dropped when zero */
    int64_t hi = d ? d : h ? h : m, lo = d ? h % 24 : h ? m % 60 : s % 60;
    const char *uh = d ? "d" : h ? "h" : "m", *ul = d ? "h" : h ? "m" : "s";
    if (m > 0 && lo)
        snprintf(buf, size, "%" PRId64 "%s%" PRId64 "%s", hi, uh, lo, ul);
    else if (m > 0) snprintf(buf, size, "%" PRId64 "%s", hi, uh);
    else if (s > 0) snprintf(buf, size, "%" PRId64 "s", s);
    else snprintf(buf, size, "%" PRId64 "ms", ms);
}

/* --------------------------------------------------------------- the page */

static const char *rs_http_decision_colour(rs_decision_t d) {
    switch (d) {
    case RS_DECISION_APPROVE: return "#2b8a3e";
    case RS_DECISION_REVIEW: return "#e67700";
    case RS_DECISION_DECLINE: return "#c92a2a";
    case RS_DECISION_ALERT: return "#7048e8";
    default: return "#666666";
    }
}

/* Orange ramp for attention weight w in [0,1]: light -> dark. */
static void rs_http_ramp(double w, char *buf, size_t size) {
    if (!isfinite(w) || w < 0) w = 0;
    if (w > 1) w = 1;
    int r = (int)(253 + (217 - 253) * w), g = (int)(224 + (72 - 224) * w),
        b = (int)(197 + (15 - 197) * w);
    snprintf(buf, size, "#%02x%02x%02x", r, g, b);
}

/* x position for an event `ago_ms` before the scored one: a log scale of
 * the time before it, so the last minutes and the last month both show. */
static double rs_http_tx(int64_t ago_ms, double lmax, double x0, double x1) {
    double a = ago_ms > 0 ? (double)ago_ms : 0;
    return x1 - log1p(a / 60000.0) / lmax * (x1 - x0);
}

static void rs_http_view_timeline(const rs_score_t *sc, rs_http_buf_t *b) {
    const rs_explanation_t *ex = &sc->explanation;
    int n = RS_MIN(RS_MAX(ex->n_attended, 0), RS_MAX_ATTEND);
    const double W = 920, H = 170, x0 = 70, x1 = 800, y = 100;
    static const struct { int64_t ms; const char *label; } ticks[] = {
        {60000, "1m"}, {600000, "10m"}, {3600000, "1h"}, {21600000, "6h"},
        {86400000, "1d"}, {604800000, "7d"}, {2592000000LL, "30d"},
        {31536000000LL, "1y"}};
    int64_t amax = 3600000; /* at least an hour of axis */
    double wmax = 0;
    char t1[64], col[16], nb[64];
    for (int i = 0; i < n; i++) {
        amax = RS_MAX(amax, sc->event_time_ms - ex->attended[i].event_time_ms);
        if (isfinite(ex->attended[i].weight))
            wmax = RS_MAX(wmax, ex->attended[i].weight);
    }
    double lmax = log1p((double)amax / 60000.0);
    rs_http_buf_printf(b,
        "<svg id=\"timeline\" class=\"chart\" viewBox=\"0 0 %.0f %.0f\" "
        "width=\"%.0f\" height=\"%.0f\" role=\"img\" "
        "aria-label=\"history timeline\">\n"
        "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" "
        "stroke=\"#868e96\" stroke-width=\"2\"/>\n",
        W, H, W, H, x0 - 10, y, x1, y);
    for (size_t k = 0; k < RS_ARRAY_LEN(ticks) && ticks[k].ms <= amax; k++) {
        double x = rs_http_tx(ticks[k].ms, lmax, x0, x1);
        rs_http_buf_printf(b,
            "<line x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" y2=\"%.0f\" "
            "stroke=\"#ced4da\"/><text x=\"%.1f\" y=\"%.0f\" class=\"ax\" "
            "text-anchor=\"middle\">-%s</text>\n",
            x, y - 70, x, y + 50, x, H - 4, ticks[k].label);
    }
    rs_http_buf_printf(b,
        "<text x=\"%.0f\" y=\"%.0f\" class=\"ax\">time before this event "
        "(log scale)</text>\n", x0 - 10, 12.0);
    /* attention arcs first, so circles draw over them */
    for (int i = 0; i < n; i++) {
        const rs_attended_t *a = &ex->attended[i];
        double w = isfinite(a->weight) && a->weight > 0 ? a->weight : 0;
        double x = rs_http_tx(sc->event_time_ms - a->event_time_ms, lmax, x0, x1);
        double rel = wmax > 0 ? w / wmax : 0;
        rs_http_ramp(rel, col, sizeof(col));
        rs_http_buf_printf(b,
            "<path d=\"M %.1f %.1f Q %.1f %.1f %.1f %.1f\" fill=\"none\" "
            "stroke=\"%s\" stroke-width=\"%.1f\" opacity=\"0.8\"/>\n",
            x, y, (x + x1) / 2, y - 30 - 50 * rel, x1, y, col, 1 + 5 * rel);
    }
    for (int i = 0; i < n; i++) {
        const rs_attended_t *a = &ex->attended[i];
        double w = isfinite(a->weight) && a->weight > 0 ? a->weight : 0;
        double x = rs_http_tx(sc->event_time_ms - a->event_time_ms, lmax, x0, x1);
        double rel = wmax > 0 ? w / wmax : 0;
        double r = 5 + 17 * sqrt(RS_MIN(w, 1.0));
        rs_http_ramp(rel, col, sizeof(col));
        rs_http_ago(sc->event_time_ms - a->event_time_ms, t1, sizeof(t1));
        rs_http_buf_printf(b,
            "<g class=\"att\"><circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" "
            "fill=\"%s\" stroke=\"#7c2d12\" stroke-width=\"1\"><title>",
            x, y, r, col);
        rs_http_buf_html(b, a->event_id);
        RS_HTTP_LIT(b, " \xc2\xb7 ");
        rs_http_buf_html(b, a->counterparty_id);
        rs_http_buf_printf(b, " \xc2\xb7 weight %s</title></circle>\n",
                           rs_http_num(nb, sizeof(nb), "%.3f", a->weight));
        /* labels alternate below the axis so neighbours overlap less */
        double ly = y + r + 14 + 15 * (i % 2);
        rs_http_buf_printf(b,
            "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" class=\"lbl\">"
            "%s \xc2\xb7 -%s</text></g>\n",
            x, ly,
            rs_http_num(nb, sizeof(nb), "%.2f", a->weight), t1);
    }
    rs_http_buf_printf(b,
        "<g class=\"cur\"><rect x=\"%.1f\" y=\"%.1f\" width=\"16\" "
        "height=\"16\" transform=\"rotate(45 %.1f %.1f)\" fill=\"%s\" "
        "stroke=\"#111\" stroke-width=\"1.5\"><title>this event</title></rect>\n"
        "<text x=\"%.1f\" y=\"%.1f\" class=\"lbl\" font-weight=\"bold\">"
        "this event</text></g>\n</svg>\n",
        x1 - 8, y - 8, x1, y, rs_http_decision_colour(sc->decision), x1 + 18,
        y + 4);
}

static void rs_http_view_contrib(const rs_score_t *sc, rs_http_buf_t *b) {
    const rs_explanation_t *ex = &sc->explanation;
    int n = RS_MIN(RS_MAX(ex->n_contrib, 0), RS_MAX_CONTRIB);
    const double row = 30, lw = 300, mid = 610, half = 250;
    double amax = 0;
    char nb[64], nb2[64];
    for (int i = 0; i < n; i++)
        if (isfinite(ex->contrib[i].contribution))
            amax = RS_MAX(amax, fabs(ex->contrib[i].contribution));
    double H = row * n + 30;
    rs_http_buf_printf(b,
        "<svg id=\"contrib\" class=\"chart\" viewBox=\"0 0 920 %.0f\" "
        "width=\"920\" height=\"%.0f\" role=\"img\" "
        "aria-label=\"feature contributions\">\n"
        "<line x1=\"%.0f\" y1=\"4\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"#495057\" "
        "stroke-width=\"1\"/>\n"
        "<text x=\"%.0f\" y=\"%.0f\" class=\"ax\" text-anchor=\"end\">"
        "\xe2\x86\x90 lowers risk</text>\n"
        "<text x=\"%.0f\" y=\"%.0f\" class=\"ax\">raises risk "
        "\xe2\x86\x92</text>\n",
        H, H, mid, mid, H - 22, mid - 8, H - 6, mid + 8, H - 6);
    for (int i = 0; i < n; i++) {
        const rs_contrib_t *c = &ex->contrib[i];
        double v = isfinite(c->contribution) ? c->contribution : 0;
        double len = amax > 0 ? fabs(v) / amax * half : 0;
        double y = 6 + row * i;
        int pos = v >= 0;
        rs_http_buf_printf(b, "<g class=\"row\"><text x=\"%.0f\" y=\"%.1f\" "
                              "text-anchor=\"end\" class=\"name\">",
                           lw, y + 17);
        rs_http_buf_html(b, c->name);
        rs_http_buf_printf(b, " = %s</text>\n",
                           rs_http_num(nb, sizeof(nb), "%.4g", c->value));
        rs_http_buf_printf(b,
            "<rect class=\"bar %s\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
            "height=\"20\" fill=\"%s\"/>\n"
            "<text x=\"%.1f\" y=\"%.1f\" class=\"val\" text-anchor=\"%s\">"
            "%s</text></g>\n",
            pos ? "pos" : "neg", pos ? mid : mid - len, y + 2, RS_MAX(len, 1.0),
            pos ? "#d62728" : "#1f77b4", pos ? mid + len + 6 : mid - len - 6,
            y + 17, pos ? "start" : "end",
            rs_http_num(nb2, sizeof(nb2), "%+.4f", c->contribution));
    }
    RS_HTTP_LIT(b, "</svg>\n");
}

static void rs_http_view_experts(const rs_score_t *sc, rs_http_buf_t *b) {
    const rs_explanation_t *ex = &sc->explanation;
    int n = RS_MIN(RS_MAX(ex->n_experts, 0), RS_MAX_EXPERTS);
    const double row = 24, x0 = 80, wmax = 300;
    char nb[64];
    double H = row * n + 8;
    rs_http_buf_printf(b,
        "<svg id=\"experts\" class=\"chart\" viewBox=\"0 0 460 %.0f\" "
        "width=\"460\" height=\"%.0f\" role=\"img\" "
        "aria-label=\"experts and gate weights\">\n",
        H, H);
    for (int i = 0; i < n; i++) {
        double g = ex->experts[i].gate_weight;
        double gv = isfinite(g) ? RS_MAX(0.0, RS_MIN(g, 1.0)) : 0;
        double y = 4 + row * i;
        rs_http_buf_printf(b,
            "<g class=\"row\"><text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\" "
            "class=\"name\">expert %u</text>\n"
            "<rect x=\"%.0f\" y=\"%.1f\" width=\"%.0f\" height=\"18\" "
            "fill=\"#e9ecef\"/>\n"
            "<rect class=\"gate\" x=\"%.0f\" y=\"%.1f\" width=\"%.1f\" "
            "height=\"18\" fill=\"#0f766e\"/>\n"
            "<text x=\"%.0f\" y=\"%.1f\" class=\"val\">%s</text></g>\n",
            x0 - 10, y + 14, ex->experts[i].expert, x0, y, wmax, x0, y,
            gv * wmax, x0 + wmax + 8, y + 14,
            rs_http_num(nb, sizeof(nb), "%.3f", g));
    }
    RS_HTTP_LIT(b, "</svg>\n");
}

void rs_http_render_view(const rs_score_t *sc, const char *json_href,
                         rs_http_buf_t *b) {
    const rs_explanation_t *ex = &sc->explanation;
    char t1[64], t2[64], nb[64];
    const char *dcol = rs_http_decision_colour(sc->decision);
    double sv = isfinite(sc->score) ? RS_MAX(0.0, RS_MIN(sc->score, 1.0)) : 0;
    static const char css[] =
        "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,"
        "'DejaVu Sans',sans-serif;margin:0;background:#f1f3f5;color:#212529}\n"
        "main{max-width:960px;margin:0 auto;padding:10px}\n"
        "h1{font-size:18px;margin:0 0 2px;word-break:break-all}\n"
        "h2{font-size:14px;margin:0 0 6px;color:#343a40;"
        "border-bottom:1px solid #dee2e6;padding-bottom:3px}\n"
        ".card{background:#fff;border:1px solid #dee2e6;border-radius:6px;"
        "padding:8px 14px;margin-bottom:8px}\n"
        ".top{display:flex;gap:24px}.top>div{flex:1;min-width:0}\n"
        ".score{font-size:34px;font-weight:700}\n"
        ".badge{display:inline-block;color:#fff;border-radius:4px;"
        "padding:2px 10px;font-weight:700;text-transform:uppercase;"
        "vertical-align:middle;margin-left:10px}\n"
        ".meta{color:#495057;font-size:13px;border-collapse:collapse}\n"
        ".meta td{padding:1px 12px 1px 0;word-break:break-all}\n"
        "table.att{border-collapse:collapse;font-size:12px;margin-top:4px}\n"
        "table.att td,table.att th{padding:1px 10px;text-align:left;"
        "border-bottom:1px solid #f1f3f5}\n"
        "ul{margin:4px 0;padding-left:20px}li{margin:2px 0}\n"
        ".note{color:#868e96;font-size:12px;font-weight:400}\n"
        "svg{display:block}svg text{font-size:12px;fill:#212529}\n"
        "svg .ax{fill:#868e96;font-size:11px}\n"
        "svg .lbl{font-size:11px;fill:#495057}\n"
        ".none{color:#868e96;font-style:italic;margin:4px 0}\n";

    RS_HTTP_LIT(b, "<!DOCTYPE html>\n<html lang=\"en\"><head>"
                   "<meta charset=\"utf-8\">\n<title>riskstream: ");
    rs_http_buf_html(b, sc->event_id);
    RS_HTTP_LIT(b, "</title>\n<style>\n");
    rs_http_buf_append(b, css, sizeof(css) - 1);
    RS_HTTP_LIT(b, "</style></head><body><main>\n");

    /* header: the decision and its facts on the left, reasons right */
    RS_HTTP_LIT(b, "<div class=\"card top\"><div><h1>event ");
    rs_http_buf_html(b, sc->event_id);
    rs_http_buf_printf(b, "</h1>\n<div><span class=\"score\">%s</span>"
                          "<span class=\"badge\" style=\"background:%s\">%s"
                          "</span></div>\n",
                       rs_http_num(nb, sizeof(nb), "%.4f", sc->score), dcol,
                       rs_decision_str(sc->decision));
    rs_http_buf_printf(b,
        "<svg id=\"gauge\" viewBox=\"0 0 400 14\" width=\"400\" height=\"14\">"
        "<rect x=\"0\" y=\"2\" width=\"400\" height=\"10\" rx=\"5\" "
        "fill=\"#e9ecef\"/><rect x=\"0\" y=\"2\" width=\"%.1f\" height=\"10\" "
        "rx=\"5\" fill=\"%s\"/></svg>\n",
        400 * sv, dcol);
    rs_time_fmt(sc->event_time_ms, t1, sizeof(t1));
    rs_time_fmt(sc->scored_at_ms, t2, sizeof(t2));
    RS_HTTP_LIT(b, "<table class=\"meta\"><tr><td>entity</td><td>");
    rs_http_buf_html(b, sc->entity_id);
    RS_HTTP_LIT(b, "</td></tr><tr><td>model version</td><td>");
    rs_http_buf_html(b, sc->model_version);
    rs_http_buf_printf(b,
        "</td></tr><tr><td>event time</td><td>%s</td></tr>"
        "<tr><td>scored at</td><td>%s</td></tr>"
        "<tr><td>latency</td><td>%.3f ms%s</td></tr></table>\n",
        t1, t2, (double)sc->latency_us / 1000.0,
        (sc->flags & RS_SCORE_FLAG_LATE) ? " (late event)" : "");
    if (json_href) {
        RS_HTTP_LIT(b, "<div class=\"meta\"><a href=\"");
        rs_http_buf_html(b, json_href);
        RS_HTTP_LIT(b, "\">raw JSON record</a></div>\n");
    }
    RS_HTTP_LIT(b, "</div><div><h2>Reasons</h2>\n");
    int nr = RS_MIN(RS_MAX(ex->n_reasons, 0), RS_MAX_REASONS);
    if (nr == 0) {
        RS_HTTP_LIT(b, "<p class=\"none\">none recorded</p>\n");
    } else {
        RS_HTTP_LIT(b, "<ul id=\"reasons\">\n");
        for (int i = 0; i < nr; i++) {
            RS_HTTP_LIT(b, "<li>");
            rs_http_buf_html(b, ex->reasons[i]);
            RS_HTTP_LIT(b, "</li>\n");
        }
        RS_HTTP_LIT(b, "</ul>\n");
    }
    RS_HTTP_LIT(b, "</div></div>\n");

    RS_HTTP_LIT(b, "<div class=\"card\"><h2>Feature contributions "
                   "<span class=\"note\">red raises the risk, blue lowers "
                   "it</span></h2>\n");
    if (ex->n_contrib <= 0) RS_HTTP_LIT(b, "<p class=\"none\">none recorded</p>\n");
    else rs_http_view_contrib(sc, b);
    RS_HTTP_LIT(b, "</div>\n");

    RS_HTTP_LIT(b, "<div class=\"card\"><h2>History the model attended to "
                   "<span class=\"note\">past events of this entity; circle "
                   "size and colour = attention weight</span></h2>\n");
    rs_http_view_timeline(sc, b);
    int na = RS_MIN(RS_MAX(ex->n_attended, 0), RS_MAX_ATTEND);
    if (na == 0) {
        RS_HTTP_LIT(b, "<p class=\"none\">no attended events</p>\n");
    } else {
        RS_HTTP_LIT(b, "<table class=\"att\"><tr><th>event</th><th>time</th>"
                       "<th>amount</th><th>counterparty</th><th>weight</th>"
                       "</tr>\n");
        for (int i = 0; i < na; i++) {
            const rs_attended_t *a = &ex->attended[i];
            rs_time_fmt(a->event_time_ms, t1, sizeof(t1));
            RS_HTTP_LIT(b, "<tr><td>");
            rs_http_buf_html(b, a->event_id);
            rs_http_buf_printf(b, "</td><td>%s</td><td>%s</td><td>", t1,
                               rs_http_num(nb, sizeof(nb), "%.2f", a->amount));
            rs_http_buf_html(b, a->counterparty_id);
            rs_http_buf_printf(b, "</td><td>%s</td></tr>\n",
                               rs_http_num(nb, sizeof(nb), "%.3f", a->weight));
        }
        RS_HTTP_LIT(b, "</table>\n");
    }
    RS_HTTP_LIT(b, "</div>\n");

    RS_HTTP_LIT(b, "<div class=\"card\"><h2>Experts and gate weights</h2>\n");
    if (ex->n_experts <= 0) RS_HTTP_LIT(b, "<p class=\"none\">none recorded</p>\n");
    else rs_http_view_experts(sc, b);
    RS_HTTP_LIT(b, "</div>\n</main></body></html>\n");
}

/* ----------------------------------------------------------------- server */

typedef struct rs_http_route_s {
    char prefix[128];
    rs_http_route_fn fn;
    void *opaque;
    int post;                  /* 1: POST route, 0: GET/HEAD            */
} rs_http_route_t;

struct rs_http_s {
    rs_http_conf_t conf;
    rs_redis_conf_t redis;
    struct MHD_Daemon *mhd;
    int port;
    char token[256];           /* "" = no auth                          */
    size_t token_len;
    pthread_key_t tls;         /* rs_sink_redis_t * of a server thread  */
    int tls_ok;
    pthread_mutex_t lock;      /* routes                                */
    int nroutes;
    rs_http_route_t routes[RS_HTTP_MAX_ROUTES];
};

static void rs_http_tls_free(void *p) { rs_sink_redis_destroy(p); }

/* This thread's Redis connection, created on first use.  @locality a
 * server thread */
static rs_sink_redis_t *rs_http_sink(rs_http_t *http, char *errstr,
                                     size_t errstr_size) {
    rs_sink_redis_t *sink = pthread_getspecific(http->tls);
    if (sink) return sink;
    sink = rs_sink_redis_new(&http->redis, errstr, errstr_size);
    if (sink) pthread_setspecific(http->tls, sink);
    return sink;
}

/* GET a score, retrying once after a lost connection (the sink reconnects
 * on its next call). */
static rs_err_t rs_http_get_score(rs_http_t *http, const char *id, char *json,
                                  size_t size, char *errstr,
                                  size_t errstr_size) {
    rs_err_t err = RS_ERR_IO;
    for (int attempt = 0; attempt < 2 && err == RS_ERR_IO; attempt++) {
        rs_sink_redis_t *sink = rs_http_sink(http, errstr, errstr_size);
        if (!sink) return RS_ERR_IO;
        err = rs_sink_redis_get_score(sink, id, json, size, errstr,
                                      errstr_size);
    }
    return err;
}

static rs_err_t rs_http_entity_ids(rs_http_t *http, const char *entity,
                                   int64_t since_ms, char (*ids)[RS_ID_MAX],
                                   int max, int *n, char *errstr,
                                   size_t errstr_size) {
    rs_err_t err = RS_ERR_IO;
    for (int attempt = 0; attempt < 2 && err == RS_ERR_IO; attempt++) {
        rs_sink_redis_t *sink = rs_http_sink(http, errstr, errstr_size);
        if (!sink) return RS_ERR_IO;
        err = rs_sink_redis_entity_scores(sink, entity, since_ms, ids, max, n,
                                          errstr, errstr_size);
    }
    return err;
}

static int rs_http_error(rs_http_buf_t *b, const char **ctype, int status,
                         const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    b->len = 0;
    b->overflow = 0;
    RS_HTTP_LIT(b, "{\"error\":");
    rs_http_buf_jstr(b, msg);
    RS_HTTP_LIT(b, "}\n");
    *ctype = RS_CT_JSON;
    return status;
}

/* Status for a failed Redis call. */
static int rs_http_redis_error(rs_http_buf_t *b, const char **ctype,
                               rs_err_t err, const char *errstr) {
    rs_warn("http", "redis: %s", errstr);
    return rs_http_error(b, ctype, err == RS_ERR_IO ? 503 : 500,
                         "score store unavailable (%s)", rs_err_str(err));
}

static int rs_http_score(rs_http_t *http, const char *id, int view,
                         const char *raw_seg, rs_http_buf_t *b,
                         const char **ctype) {
    char errstr[512];
    char *json = malloc(RS_ENCODE_MAX);
    if (!json) return rs_http_error(b, ctype, 503, "out of memory");
    int status;
    rs_err_t err = strlen(id) >= RS_ID_MAX
                       ? RS_ERR_NOTFOUND
                       : rs_http_get_score(http, id, json, RS_ENCODE_MAX,
                                           errstr, sizeof(errstr));
    if (err == RS_ERR_NOTFOUND) {
        status = rs_http_error(b, ctype, 404,
                               "no score for event '%.64s' (expired after "
                               "redis.ttl, or never scored)", id);
    } else if (err != RS_OK) {
        status = rs_http_redis_error(b, ctype, err, errstr);
    } else if (!view) {
        rs_http_buf_append(b, json, strlen(json));
        *ctype = RS_CT_JSON;
        status = 200;
    } else {
        rs_score_t *sc = malloc(sizeof(*sc));
        if (!sc) {
            status = rs_http_error(b, ctype, 503, "out of memory");
        } else if (rs_score_from_json(json, strlen(json), sc, errstr,
                                      sizeof(errstr)) != RS_OK) {
            status = rs_http_error(b, ctype, 500,
                                   "stored record does not decode: %s",
                                   errstr);
        } else {
            char href[RS_ID_MAX * 3 + 32];
            /* relative link back to the JSON: "../<segment>" */
            snprintf(href, sizeof(href), "../%s", raw_seg);
            rs_http_render_view(sc, href, b);
            *ctype = RS_CT_HTML;
            status = 200;
        }
        free(sc);
    }
    free(json);
    return status;
}

static int rs_http_entity(rs_http_t *http, struct MHD_Connection *conn,
                          const char *entity, rs_http_buf_t *b,
                          const char **ctype) {
    char errstr[512], qv[128];
    int64_t since_ms = 0;
    long limit = RS_HTTP_LIMIT_DEF;
    const char *s = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND,
                                                "since");
    if (s && *s) {
        if (rs_http_pct_decode(s, strlen(s), 1, qv, sizeof(qv)) < 0 ||
            rs_http_since_parse(qv, rs_clock_wall_ms(), &since_ms) != 0)
            return rs_http_error(b, ctype, 400,
                                 "since: expected an ISO time, epoch s/ms or "
                                 "a duration ago like 7d");
    }
    const char *l = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND,
                                                "limit");
    if (l && *l) {
        char *end;
        errno = 0;
        limit = strtol(l, &end, 10);
        if (errno || *end || limit < 1 || limit > RS_HTTP_LIMIT_MAX)
            return rs_http_error(b, ctype, 400,
                                 "limit: expected 1..%d", RS_HTTP_LIMIT_MAX);
    }
    if (strlen(entity) >= RS_ID_MAX) {
        RS_HTTP_LIT(b, "[]\n");
        *ctype = RS_CT_JSON;
        return 200;
    }
    /* The index keeps at most entity_index_max ids, oldest first: read
     * them all and walk back from the newest. */
    int max = (int)RS_MAX(RS_MIN(http->redis.entity_index_max, 100000),
                          (int64_t)limit);
    char (*ids)[RS_ID_MAX] = malloc((size_t)max * RS_ID_MAX);
    char *json = malloc(RS_ENCODE_MAX);
    int n = 0, status = 200, out = 0;
    if (!ids || !json) {
        status = rs_http_error(b, ctype, 503, "out of memory");
        goto done;
    }
    rs_err_t err = rs_http_entity_ids(http, entity, since_ms, ids, max, &n,
                                      errstr, sizeof(errstr));
    if (err != RS_OK) {
        status = rs_http_redis_error(b, ctype, err, errstr);
        goto done;
    }
    RS_HTTP_LIT(b, "[");
    for (int i = n - 1; i >= 0 && out < limit; i--) {
        err = rs_http_get_score(http, ids[i], json, RS_ENCODE_MAX, errstr,
                                sizeof(errstr));
        if (err == RS_ERR_NOTFOUND) continue; /* expired, index not yet */
        if (err != RS_OK) {
            status = rs_http_redis_error(b, ctype, err, errstr);
            goto done;
        }
        if (out++) RS_HTTP_LIT(b, ",\n");
        rs_http_buf_append(b, json, strlen(json));
    }
    RS_HTTP_LIT(b, "]\n");
    *ctype = RS_CT_JSON;
done:
    free(ids);
    free(json);
    return status;
}

/* The added route of method `post` matching `url` ({0} if none). */
static rs_http_route_t rs_http_find_route(rs_http_t *http, const char *url,
                                          int post) {
    rs_http_route_t r = {{0}, NULL, NULL, 0};
    pthread_mutex_lock(&http->lock);
    for (int i = 0; i < http->nroutes && !r.fn; i++) {
        size_t pl = strlen(http->routes[i].prefix);
        if (http->routes[i].post == post &&
            !strncmp(url, http->routes[i].prefix, pl) &&
            (url[pl] == '\0' || url[pl] == '/'))
            r = http->routes[i];
    }
    pthread_mutex_unlock(&http->lock);
    return r;
}

/* Route one authenticated GET.  `url` is the raw path. */
static int rs_http_route(rs_http_t *http, struct MHD_Connection *conn,
                         const char *url, rs_http_buf_t *b,
                         const char **ctype) {
    char seg[RS_ID_MAX * 4];
    static const char sp[] = "/v1/scores/", ep[] = "/v1/entities/";
    if (!strncmp(url, sp, sizeof(sp) - 1) ||
        !strncmp(url, ep, sizeof(ep) - 1)) {
        int scores = url[4] == 's';
        const char *rest = url + (scores ? sizeof(sp) : sizeof(ep)) - 1;
        const char *slash = strchr(rest, '/');
        size_t sl = slash ? (size_t)(slash - rest) : strlen(rest);
        const char *tail = slash ? slash + 1 : NULL;
        if (sl == 0) return rs_http_error(b, ctype, 404, "not found");
        if (sl >= sizeof(seg) / 3 ||
            rs_http_pct_decode(rest, sl, 0, seg, sizeof(seg)) < 0)
            return rs_http_error(b, ctype, 400, "bad id in path");
        if (scores && !tail) return rs_http_score(http, seg, 0, "", b, ctype);
        if (scores && !strcmp(tail, "view")) {
            char raw[RS_ID_MAX * 3 + 1];
            if (sl >= sizeof(raw)) sl = 0; /* too long to exist anyway */
            memcpy(raw, rest, sl);
            raw[sl] = '\0';
            return rs_http_score(http, seg, 1, raw, b, ctype);
        }
        if (!scores && tail && !strcmp(tail, "scores"))
            return rs_http_entity(http, conn, seg, b, ctype);
        return rs_http_error(b, ctype, 404, "not found");
    }
    rs_http_route_t r = rs_http_find_route(http, url, 0);
    if (r.fn) {
        *ctype = RS_CT_TEXT;
        return r.fn(r.opaque, url, b, ctype);
    }
    return rs_http_error(b, ctype, 404, "not found");
}

static int rs_http_authorized(rs_http_t *http, struct MHD_Connection *conn) {
    if (!http->token_len) return 1;
    const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncasecmp(h, "Bearer ", 7)) return 0;
    h += 7;
    while (*h == ' ') h++;
    return rs_http_ct_eq(h, strlen(h), http->token, http->token_len);
}

static enum MHD_Result rs_http_handle(void *cls, struct MHD_Connection *conn,
                                      const char *url, const char *method,
                                      const char *version,
                                      const char *upload_data,
                                      size_t *upload_data_size,
                                      void **con_cls) {
    rs_http_t *http = cls;
    rs_http_buf_t b = {NULL, 0, 0, 0};
    const char *ctype = RS_CT_TEXT;
    int status;
    int is_get = !strcmp(method, MHD_HTTP_METHOD_GET) ||
                 !strcmp(method, MHD_HTTP_METHOD_HEAD);
    int is_post = !strcmp(method, MHD_HTTP_METHOD_POST);
    RS_UNUSED(version);
    RS_UNUSED(upload_data);

    /* A POST is answered once its (empty) body is in: the first call only
     * marks the connection; a body is refused (routes take no body). */
    static int rs_http_post_mark, rs_http_post_body;
    if (is_post && *con_cls == NULL) {
        *con_cls = &rs_http_post_mark;
        return MHD_YES;
    }
    if (is_post && *upload_data_size) {
        *upload_data_size = 0;
        *con_cls = &rs_http_post_body;
        return MHD_YES;
    }
    if (is_post && *con_cls == &rs_http_post_body) {
        status = rs_http_error(&b, &ctype, 413, "request body not accepted");
    } else if (is_post) {
        rs_http_route_t r = rs_http_find_route(http, url, 1);
        if (strlen(url) > RS_HTTP_URL_MAX)
            status = rs_http_error(&b, &ctype, 414, "URL too long");
        else if (!r.fn)
            status = rs_http_error(&b, &ctype, 405, "method not allowed");
        else if (!rs_http_authorized(http, conn))
            status = rs_http_error(&b, &ctype, 401,
                                   "missing or wrong bearer token");
        else
            status = r.fn(r.opaque, url, &b, &ctype);
    } else if (!is_get) {
        status = rs_http_error(&b, &ctype, 405, "method not allowed");
    } else if (*upload_data_size) {
        status = rs_http_error(&b, &ctype, 413, "request body not accepted");
    } else if (strlen(url) > RS_HTTP_URL_MAX) {
        status = rs_http_error(&b, &ctype, 414, "URL too long");
    } else if (!strcmp(url, "/healthz")) {
        RS_HTTP_LIT(&b, "ok\n");
        status = 200;
    } else if (!rs_http_authorized(http, conn)) {
        status = rs_http_error(&b, &ctype, 401, "missing or wrong bearer token");
    } else {
        status = rs_http_route(http, conn, url, &b, &ctype);
    }
    if (b.overflow)
        status = rs_http_error(&b, &ctype, 500, "response too large");
    if (!b.p) RS_HTTP_LIT(&b, "");
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        b.len, b.p, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(b.p);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    if (!strcmp(ctype, RS_CT_HTML))
        MHD_add_response_header(resp, "Content-Security-Policy",
                                "default-src 'none'; style-src "
                                "'unsafe-inline'; img-src data:");
    if (status == 401)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                "Bearer realm=\"riskstream\"");
    if (status == 405)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* Keep the URL percent-encoded: segments are decoded one by one. */
static size_t rs_http_unescape_none(void *cls, struct MHD_Connection *c,
                                    char *s) {
    RS_UNUSED(cls);
    RS_UNUSED(c);
    return strlen(s);
}

static void rs_http_mhd_log(void *cls, const char *fmt, va_list ap) {
    char msg[512];
    RS_UNUSED(cls);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) msg[--n] = '\0';
    rs_warn("http", "%s", msg);
}

rs_http_t *rs_http_new(const rs_http_conf_t *conf,
                       const rs_redis_conf_t *redis, char *errstr,
                       size_t errstr_size) {
    struct sockaddr_in sa4;
    struct sockaddr_in6 sa6;
    const struct sockaddr *sa;
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    rs_http_t *http = NULL;

    if (conf->port < 0 || conf->port > 65535) {
        rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                "http.port: %" PRId64 " is not a port", conf->port);
        return NULL;
    }
    memset(&sa4, 0, sizeof(sa4));
    memset(&sa6, 0, sizeof(sa6));
    if (inet_pton(AF_INET, conf->bind, &sa4.sin_addr) == 1) {
        sa4.sin_family = AF_INET;
        sa4.sin_port = htons((uint16_t)conf->port);
        sa = (const struct sockaddr *)&sa4;
    } else if (inet_pton(AF_INET6, conf->bind, &sa6.sin6_addr) == 1) {
        sa6.sin6_family = AF_INET6;
        sa6.sin6_port = htons((uint16_t)conf->port);
        sa = (const struct sockaddr *)&sa6;
        flags |= MHD_USE_IPv6;
    } else {
        rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                "http.bind: '%.64s' is not an IPv4 or IPv6 address",
                conf->bind);
        return NULL;
    }
    if (rs_redis_conf_check(redis, errstr, errstr_size) != RS_OK) return NULL;

    http = rs_calloc(1, sizeof(*http));
    http->conf = *conf;
    http->redis = *redis;
    pthread_mutex_init(&http->lock, NULL);
    if (conf->token_env[0]) {
        const char *tok = getenv(conf->token_env);
        if (!tok || !*tok) {
            rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                    "http.token_env: environment variable '%.64s' is not set "
                    "or empty", conf->token_env);
            goto fail;
        }
        if (strlen(tok) >= sizeof(http->token)) {
            rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                    "http.token_env: the token is longer than %zu bytes",
                    sizeof(http->token) - 1);
            goto fail;
        }
        http->token_len = rs_strlcpy(http->token, tok, sizeof(http->token));
    }
    if (pthread_key_create(&http->tls, rs_http_tls_free) != 0) {
        rs_errf(errstr, errstr_size, RS_ERR_NOMEM, "http: pthread_key_create");
        goto fail;
    }
    http->tls_ok = 1;
    unsigned int threads = (unsigned int)RS_MAX(1, RS_MIN(conf->threads, 64));
    http->mhd = MHD_start_daemon(
        flags, (uint16_t)conf->port, NULL, NULL, rs_http_handle, http,
        MHD_OPTION_EXTERNAL_LOGGER, rs_http_mhd_log, NULL,
        MHD_OPTION_SOCK_ADDR, sa,
        MHD_OPTION_THREAD_POOL_SIZE, threads,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)256,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)30,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)32768,
        MHD_OPTION_UNESCAPE_CALLBACK, rs_http_unescape_none, NULL,
        MHD_OPTION_END);
    if (!http->mhd) {
        rs_errf(errstr, errstr_size, RS_ERR_IO,
                "http: cannot listen on %.64s:%" PRId64 " (%s)", conf->bind,
                conf->port, strerror(errno));
        goto fail;
    }
    const union MHD_DaemonInfo *di =
        MHD_get_daemon_info(http->mhd, MHD_DAEMON_INFO_BIND_PORT);
    http->port = di ? (int)di->port : (int)conf->port;
    rs_info("http", "listening on %s:%d (%u threads, auth %s)", conf->bind,
            http->port, threads, http->token_len ? "bearer" : "off");
    return http;
fail:
    rs_http_destroy(http);
    return NULL;
}

int rs_http_port(const rs_http_t *http) { return http ? http->port : 0; }

static rs_err_t rs_http_add(rs_http_t *http, const char *prefix,
                            rs_http_route_fn fn, void *opaque, int post) {
    if (!http || !fn || !prefix || prefix[0] != '/' ||
        strlen(prefix) >= sizeof(http->routes[0].prefix))
        return RS_ERR_INVALID;
    rs_err_t err = RS_OK;
    pthread_mutex_lock(&http->lock);
    if (http->nroutes >= RS_HTTP_MAX_ROUTES) {
        err = RS_ERR_NOMEM;
    } else {
        rs_http_route_t *r = &http->routes[http->nroutes++];
        rs_strlcpy(r->prefix, prefix, sizeof(r->prefix));
        r->fn = fn;
        r->opaque = opaque;
        r->post = post;
    }
    pthread_mutex_unlock(&http->lock);
    return err;
}

rs_err_t rs_http_add_route(rs_http_t *http, const char *prefix,
                           rs_http_route_fn fn, void *opaque) {
    return rs_http_add(http, prefix, fn, opaque, 0);
}

rs_err_t rs_http_add_post_route(rs_http_t *http, const char *prefix,
                                rs_http_route_fn fn, void *opaque) {
    return rs_http_add(http, prefix, fn, opaque, 1);
}

void rs_http_destroy(rs_http_t *http) {
    if (!http) return;
    /* Joins the pool threads: their thread-specific Redis connections are
     * closed by rs_http_tls_free as they exit. */
    if (http->mhd) MHD_stop_daemon(http->mhd);
    if (http->tls_ok) pthread_key_delete(http->tls);
    pthread_mutex_destroy(&http->lock);
    memset(http->token, 0, sizeof(http->token));
    rs_free(http);
}

/* http_pages.c -- the analysts' pages of the HTTP API, rendered on the
 * server from records already read (see http_int.h): the case view of one
 * decision, the alert queue, an entity's history, sign-in.
 *
 * Design: plain HTML with one shared inline style sheet, charts as inline
 * SVG, bars as CSS; no external asset.  One small same-origin script
 * (/static/rs.js, below) signs in, signs out and sends the label action;
 * everything else works without it.  Every string from a record goes
 * through rs_http_buf_html (text and attributes) or rs_http_buf_url
 * (links), so a hostile id or reason is shown, never run.
 *
 * Colours: red #d62728 raises the risk, blue #1f77b4 lowers it, in the
 * contribution bars and in the reasons (a reason is always a contribution
 * that raised the risk); decisions keep their badge colours everywhere.
 *
 * Threads: reentrant, no state.
 */
#include "scoring/http_int.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define RS_POS_COL "#d62728"
#define RS_NEG_COL "#1f77b4"

/* ------------------------------------------------------------- the frame */

static const char rs_http_css[] =
    "*{box-sizing:border-box}"
    "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,"
    "'DejaVu Sans',sans-serif;margin:0;background:#f1f3f5;color:#212529;"
    "font-size:14px}\n"
    "a{color:#1c5fb0;text-decoration:none}a:hover{text-decoration:underline}\n"
    "header.top{display:flex;align-items:center;gap:18px;background:#212529;"
    "color:#f8f9fa;padding:6px 16px}\n"
    "header.top a{color:#f8f9fa}.brand{font-weight:700;letter-spacing:.5px}\n"
    "header.top form{margin-left:auto;display:flex;gap:6px}\n"
    "header.top input{width:240px;padding:3px 6px;border:0;border-radius:3px}\n"
    "header.top button{padding:3px 10px;border:0;border-radius:3px;"
    "background:#495057;color:#fff;cursor:pointer}\n"
    "main{max-width:1100px;margin:0 auto;padding:10px}\n"
    "h1{font-size:18px;margin:0 0 4px;word-break:break-all}\n"
    "h2{font-size:14px;margin:0 0 6px;color:#343a40;"
    "border-bottom:1px solid #dee2e6;padding-bottom:3px}\n"
    ".card{background:#fff;border:1px solid #dee2e6;border-radius:6px;"
    "padding:8px 14px;margin-bottom:8px}\n"
    ".split{display:flex;gap:24px}.split>div{flex:1;min-width:0}\n"
    ".score{font-size:32px;font-weight:700;vertical-align:middle}\n"
    ".badge{display:inline-block;color:#fff;border-radius:4px;"
    "padding:1px 8px;font-weight:700;text-transform:uppercase;font-size:12px}\n"
    ".score+.badge{margin-left:10px;font-size:14px;vertical-align:middle}\n"
    ".meta{color:#495057;font-size:13px;border-collapse:collapse}\n"
    ".meta td{padding:1px 12px 1px 0;word-break:break-all}\n"
    "table.list{border-collapse:collapse;width:100%;font-size:13px}\n"
    "table.list th{text-align:left;color:#495057;font-weight:600;"
    "border-bottom:2px solid #dee2e6;padding:3px 6px}\n"
    "table.list td{border-bottom:1px solid #f1f3f5;padding:3px 6px;"
    "vertical-align:top}\n"
    "table.list tr.cur td{background:#fff3bf}\n"
    "table.list td.nw{white-space:nowrap}\n"
    "td.num{text-align:right;font-variant-numeric:tabular-nums}\n"
    ".sbar{display:inline-block;width:46px;height:8px;background:#e9ecef;"
    "border-radius:4px;margin-right:6px;vertical-align:middle}\n"
    ".sbar i{display:block;height:8px;border-radius:4px}\n"
    "dl.fields{display:grid;grid-template-columns:repeat(auto-fill,"
    "minmax(190px,1fr));gap:4px 16px;margin:4px 0}\n"
    "dl.fields div{border-left:3px solid #dee2e6;padding-left:8px}\n"
    "dl.fields dt{color:#868e96;font-size:12px}"
    "dl.fields dd{margin:0;font-weight:600;word-break:break-all}\n"
    ".trends{display:flex;flex-wrap:wrap;gap:10px;margin-top:6px}\n"
    ".trends figure{margin:0;border:1px solid #e9ecef;border-radius:4px;"
    "padding:4px 6px}\n"
    ".trends figcaption{font-size:12px;color:#495057}\n"
    "ul{margin:4px 0;padding-left:4px;list-style:none}li{margin:3px 0}\n"
    ".up{color:" RS_POS_COL ";font-size:11px;margin-right:6px}\n"
    ".pos{color:" RS_POS_COL "}.neg{color:" RS_NEG_COL "}\n"
    "table.contrib{border-collapse:collapse;width:100%;font-size:13px}\n"
    "table.contrib td{padding:3px 6px;border-bottom:1px solid #f1f3f5}\n"
    "table.contrib th{font-weight:400;color:#868e96;font-size:11px;"
    "text-align:center}\n"
    "td.words{width:52%}td.barcell{width:36%;padding:3px 0}\n"
    ".halves{display:flex;height:18px}\n"
    ".halves>div{flex:1;display:flex}.halves>div.l{justify-content:flex-end;"
    "border-right:1px solid #495057}\n"
    ".bar{height:18px;min-width:1px}\n"
    ".bar.pos{background:" RS_POS_COL "}.bar.neg{background:" RS_NEG_COL "}\n"
    ".note{color:#868e96;font-size:12px;font-weight:400}\n"
    ".none{color:#868e96;font-style:italic;margin:4px 0}\n"
    "svg{display:block}svg text{font-size:12px;fill:#212529}\n"
    "svg .ax{fill:#868e96;font-size:11px}svg .lbl{font-size:11px;fill:#495057}\n"
    ".verdict{font-size:16px;font-weight:700;padding:6px 10px;border-radius:4px;"
    "color:#fff;display:inline-block}\n"
    ".verdict.fraud{background:#c92a2a}.verdict.genuine{background:#2b8a3e}\n"
    ".ob{display:inline-block;border-radius:3px;padding:0 6px;font-size:12px;"
    "font-weight:600}\n"
    ".ob.open{background:#e9ecef;color:#495057}"
    ".ob.fraud{background:#ffe3e3;color:#c92a2a}"
    ".ob.genuine{background:#d3f9d8;color:#2b8a3e}\n"
    "#label-form input{width:100%;margin:3px 0;padding:4px 6px;"
    "border:1px solid #ced4da;border-radius:3px}\n"
    ".btn{border:0;border-radius:4px;padding:6px 12px;color:#fff;"
    "font-weight:700;cursor:pointer;margin:4px 6px 0 0}\n"
    ".btn.fraud{background:#c92a2a}.btn.genuine{background:#2b8a3e}\n"
    ".btn:disabled{background:#adb5bd;cursor:not-allowed}\n"
    "#label-status{color:#c92a2a;font-size:13px;margin-top:4px}\n"
    "form.filters{display:flex;flex-wrap:wrap;gap:8px;align-items:end}\n"
    "form.filters label{display:flex;flex-direction:column;font-size:12px;"
    "color:#495057}\n"
    "form.filters input,form.filters select{padding:3px 6px;"
    "border:1px solid #ced4da;border-radius:3px;width:130px}\n"
    "form.filters button{padding:4px 14px;border:0;border-radius:3px;"
    "background:#1c5fb0;color:#fff;cursor:pointer}\n"
    ".pager{display:flex;gap:16px;margin-top:8px}\n"
    ".login{max-width:380px;margin:60px auto}\n"
    ".login input{width:100%;padding:6px;margin:6px 0;border:1px solid #ced4da;"
    "border-radius:3px}\n";

static void rs_page_head(rs_http_buf_t *b, const char *title_a,
                         const char *title_b) {
    RS_HTTP_LIT(b, "<!DOCTYPE html>\n<html lang=\"en\"><head>"
                   "<meta charset=\"utf-8\">\n<title>");
    rs_http_buf_html(b, title_a);
    if (title_b) rs_http_buf_html(b, title_b);
    RS_HTTP_LIT(b, " \xc2\xb7 riskstream</title>\n<style>\n");
    rs_http_buf_append(b, rs_http_css, sizeof(rs_http_css) - 1);
    RS_HTTP_LIT(b, "</style>\n<script src=\"/static/rs.js\" defer></script>"
                   "</head><body>\n");
}

static void rs_page_top(const rs_http_chrome_t *ch, rs_http_buf_t *b) {
    RS_HTTP_LIT(b, "<header class=\"top\"><a class=\"brand\" "
                   "href=\"/v1/alerts/view\">riskstream</a>"
                   "<a href=\"/v1/alerts/view\">Alert queue</a>"
                   "<form class=\"search\" action=\"/v1/search\" method=\"get\""
                   " role=\"search\"><input name=\"q\" id=\"q\" "
                   "placeholder=\"event id or entity id\" value=\"");
    if (ch && ch->q) rs_http_buf_html(b, ch->q);
    RS_HTTP_LIT(b, "\"><button type=\"submit\">Search</button></form>");
    if (ch && ch->auth)
        RS_HTTP_LIT(b, "<a id=\"signout\" href=\"/login\">Sign out</a>");
    RS_HTTP_LIT(b, "</header>\n<main>\n");
}

static void rs_page_end(rs_http_buf_t *b) {
    RS_HTTP_LIT(b, "</main></body></html>\n");
}

/* ---------------------------------------------------------------- pieces */

static void rs_link_case(rs_http_buf_t *b, const char *id) {
    RS_HTTP_LIT(b, "<a href=\"/v1/scores/");
    rs_http_buf_url(b, id);
    RS_HTTP_LIT(b, "/view\">");
    rs_http_buf_html(b, id);
    RS_HTTP_LIT(b, "</a>");
}

static void rs_link_entity(rs_http_buf_t *b, const char *id) {
    RS_HTTP_LIT(b, "<a class=\"entity\" href=\"/v1/entities/");
    rs_http_buf_url(b, id);
    RS_HTTP_LIT(b, "/view\">");
    rs_http_buf_html(b, id);
    RS_HTTP_LIT(b, "</a>");
}

static void rs_badge(rs_http_buf_t *b, rs_decision_t d) {
    rs_http_buf_printf(b, "<span class=\"badge\" style=\"background:%s\">%s"
                          "</span>",
                       rs_http_decision_colour(d), rs_decision_str(d));
}

static void rs_outcome_badge(rs_http_buf_t *b, const rs_http_outcome_t *o) {
    if (!o || !o->present)
        RS_HTTP_LIT(b, "<span class=\"ob open\">open</span>");
    else if (!strcmp(o->outcome, "fraud"))
        RS_HTTP_LIT(b, "<span class=\"ob fraud\">fraud</span>");
    else
        RS_HTTP_LIT(b, "<span class=\"ob genuine\">genuine</span>");
}

/* "0.9312" with a small bar */
static void rs_score_cell(rs_http_buf_t *b, const rs_score_t *sc) {
    char nb[32];
    double sv = isfinite(sc->score) ? RS_MAX(0.0, RS_MIN(sc->score, 1.0)) : 0;
    rs_http_buf_printf(b, "<span class=\"sbar\"><i style=\"width:%.0f%%;"
                          "background:%s\"></i></span>%s",
                       100 * sv, rs_http_decision_colour(sc->decision),
                       rs_http_num(nb, sizeof(nb), "%.4f", sc->score));
}

static int rs_show_amount(const rs_event_fields_t *ef) {
    return ef->amount != 0 || ef->n_numeric == 0;
}

/* One line about the event: "42.50 at m-3 · mcc 5411 · FR". */
static void rs_event_summary(rs_http_buf_t *b, const rs_score_t *sc) {
    const rs_event_fields_t *ef = &sc->event;
    char nb[48];
    int parts = 0;
    if (!ef->present) {
        RS_HTTP_LIT(b, "<span class=\"note\">not recorded</span>");
        return;
    }
    if (rs_show_amount(ef)) {
        rs_http_buf_printf(b, "%s", rs_http_num(nb, sizeof(nb), "%.2f",
                                                ef->amount));
        parts++;
    }
    if (ef->counterparty_id[0]) {
        if (parts) RS_HTTP_LIT(b, " at ");
        rs_http_buf_html(b, ef->counterparty_id);
        parts++;
    }
    for (int i = 0; i < ef->n_categ && i < 4; i++) {
        if (parts++) RS_HTTP_LIT(b, " \xc2\xb7 ");
        rs_http_buf_html(b, ef->categ[i].value);
    }
    /* the numeric fields when there is no amount (sensor readings) */
    for (int i = 0; i < ef->n_numeric && i < 4 && !rs_show_amount(ef); i++) {
        if (parts++) RS_HTTP_LIT(b, " \xc2\xb7 ");
        rs_http_buf_html(b, ef->numeric[i].name);
        rs_http_buf_printf(b, " %s", rs_http_num(nb, sizeof(nb), "%.4g",
                                                 ef->numeric[i].value));
    }
}

/* The list of records as a table (queue, entity page, case history). */
static void rs_list_table(rs_http_buf_t *b, const char *id,
                          const rs_score_t *const *rows,
                          const rs_http_outcome_t *outs, int n,
                          const char *current, int with_entity,
                          int with_reason) {
    char t[64];
    rs_http_buf_printf(b, "<table class=\"list\" id=\"%s\"><thead><tr>"
                          "<th>event time (UTC)</th><th>event</th>",
                       id);
    if (with_entity) RS_HTTP_LIT(b, "<th>entity</th>");
    RS_HTTP_LIT(b, "<th>details</th><th>score</th><th>decision</th>");
    if (with_reason) RS_HTTP_LIT(b, "<th>top reason</th>");
    RS_HTTP_LIT(b, "<th>outcome</th></tr></thead><tbody>\n");
    for (int i = 0; i < n; i++) {
        const rs_score_t *sc = rows[i];
        rs_time_fmt(sc->event_time_ms, t, sizeof(t));
        t[19] = '\0'; /* seconds are enough in a list */
        t[10] = ' ';
        rs_http_buf_printf(b, "<tr%s data-id=\"",
                           current && !strcmp(current, sc->event_id)
                               ? " class=\"cur\"" : "");
        rs_http_buf_html(b, sc->event_id);
        rs_http_buf_printf(b, "\" data-t=\"%" PRId64 "\"><td class=\"nw\">%s"
                              "</td><td class=\"nw\">",
                           sc->event_time_ms, t);
        rs_link_case(b, sc->event_id);
        RS_HTTP_LIT(b, "</td>");
        if (with_entity) {
            RS_HTTP_LIT(b, "<td class=\"nw\">");
            rs_link_entity(b, sc->entity_id);
            RS_HTTP_LIT(b, "</td>");
        }
        RS_HTTP_LIT(b, "<td>");
        rs_event_summary(b, sc);
        RS_HTTP_LIT(b, "</td><td class=\"num nw\">");
        rs_score_cell(b, sc);
        RS_HTTP_LIT(b, "</td><td class=\"nw\">");
        rs_badge(b, sc->decision);
        RS_HTTP_LIT(b, "</td>");
        if (with_reason) {
            RS_HTTP_LIT(b, "<td>");
            if (sc->explanation.n_reasons > 0)
                rs_http_buf_html(b, sc->explanation.reasons[0]);
            RS_HTTP_LIT(b, "</td>");
        }
        RS_HTTP_LIT(b, "<td>");
        rs_outcome_badge(b, outs ? &outs[i] : NULL);
        RS_HTTP_LIT(b, "</td></tr>\n");
    }
    RS_HTTP_LIT(b, "</tbody></table>\n");
}

/* ---------------------------------------------------------------- trends */

/* The series shown as trends: the amount when the event has one, else
 * its numeric fields (a sensor's readings). */
typedef struct rs_series_s {
    char name[RS_NAME_MAX];
    int amount;
} rs_series_t;

static int rs_trend_series(const rs_event_fields_t *ef, rs_series_t *out,
                           int max) {
    int n = 0;
    if (rs_show_amount(ef) && n < max) {
        rs_strlcpy(out[n].name, "amount", sizeof(out[n].name));
        out[n++].amount = 1;
        return n;
    }
    for (int i = 0; i < ef->n_numeric && n < max; i++) {
        rs_strlcpy(out[n].name, ef->numeric[i].name, sizeof(out[n].name));
        out[n++].amount = 0;
    }
    return n;
}

static int rs_series_value(const rs_score_t *sc, const rs_series_t *s,
                           double *v) {
    const rs_event_fields_t *ef = &sc->event;
    if (!ef->present) return 0;
    if (s->amount) {
        *v = ef->amount;
        return isfinite(*v);
    }
    for (int i = 0; i < ef->n_numeric; i++)
        if (!strcmp(ef->numeric[i].name, s->name)) {
            *v = ef->numeric[i].value;
            return isfinite(*v);
        }
    return 0;
}

/* Small line charts of the entity's recent values, one per series; rows
 * newest first; `mark` is the event to highlight (NULL: none). */
static void rs_trends(rs_http_buf_t *b, const rs_score_t *const *rows, int n,
                      const rs_event_fields_t *like, const char *mark) {
    rs_series_t ser[8];
    int ns = rs_trend_series(like, ser, 8);
    const double W = 250, H = 64, pad = 6;
    int drawn = 0;
    char nb[48], nb2[48];
    for (int s = 0; s < ns; s++) {
        double xs[64], ys[64];
        int idx[64], np = 0, cur = -1;
        int64_t t0 = INT64_MAX, t1 = INT64_MIN;
        /* oldest first */
        for (int i = n - 1; i >= 0 && np < 64; i--) {
            double v;
            if (!rs_series_value(rows[i], &ser[s], &v)) continue;
            xs[np] = (double)rows[i]->event_time_ms;
            ys[np] = v;
            idx[np] = i;
            if (mark && !strcmp(rows[i]->event_id, mark)) cur = np;
            t0 = RS_MIN(t0, rows[i]->event_time_ms);
            t1 = RS_MAX(t1, rows[i]->event_time_ms);
            np++;
        }
        if (np < 2) continue;
        double lo = ys[0], hi = ys[0];
        for (int k = 1; k < np; k++) {
            lo = RS_MIN(lo, ys[k]);
            hi = RS_MAX(hi, ys[k]);
        }
        if (hi - lo < 1e-12) {
            hi += 0.5;
            lo -= 0.5;
        }
        double span = (double)(t1 - t0);
        if (!drawn++)
            RS_HTTP_LIT(b, "<div class=\"trends\" id=\"trends\">\n");
        RS_HTTP_LIT(b, "<figure class=\"trend\"><figcaption>");
        rs_http_buf_html(b, ser[s].name);
        rs_http_buf_printf(b, " <span class=\"note\">last %d (min %s, max %s)"
                              "</span></figcaption>\n",
                           np, rs_http_num(nb, sizeof(nb), "%.4g", lo),
                           rs_http_num(nb2, sizeof(nb2), "%.4g", hi));
        rs_http_buf_printf(b, "<svg class=\"spark\" viewBox=\"0 0 %.0f %.0f\" "
                              "width=\"%.0f\" height=\"%.0f\" role=\"img\" "
                              "aria-label=\"",
                           W, H, W, H);
        rs_http_buf_html(b, ser[s].name);
        RS_HTTP_LIT(b, " trend\"><polyline fill=\"none\" stroke=\"#1c5fb0\" "
                       "stroke-width=\"1.6\" points=\"");
        double px[64], py[64];
        for (int k = 0; k < np; k++) {
            px[k] = pad + (span > 0 ? (xs[k] - (double)t0) / span
                                    : (double)k / (np - 1)) * (W - 2 * pad);
            py[k] = H - pad - (ys[k] - lo) / (hi - lo) * (H - 2 * pad);
            rs_http_buf_printf(b, "%s%.1f,%.1f", k ? " " : "", px[k], py[k]);
        }
        RS_HTTP_LIT(b, "\"/>\n");
        for (int k = 0; k < np; k++) {
            const rs_score_t *r = rows[idx[k]];
            rs_http_buf_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%s\" "
                                  "fill=\"%s\"><title>",
                               px[k], py[k], k == cur ? "5" : "2.2",
                               k == cur ? rs_http_decision_colour(r->decision)
                                        : "#1c5fb0");
            rs_http_buf_html(b, r->event_id);
            rs_http_buf_printf(b, ": %s</title></circle>\n",
                               rs_http_num(nb, sizeof(nb), "%.4g", ys[k]));
        }
        RS_HTTP_LIT(b, "</svg></figure>\n");
    }
    if (drawn) RS_HTTP_LIT(b, "</div>\n");
}

/* ------------------------------------------------------- explanation art */

/* Orange ramp for attention weight w in [0,1]: light -> dark. */
static void rs_http_ramp(double w, char *buf, size_t size) {
    if (!isfinite(w) || w < 0) w = 0;
    if (w > 1) w = 1;
    int r = (int)(253 + (217 - 253) * w), g = (int)(224 + (72 - 224) * w),
        bl = (int)(197 + (15 - 197) * w);
    snprintf(buf, size, "#%02x%02x%02x", r, g, bl);
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
        RS_HTTP_LIT(b, "<g class=\"att\"><a href=\"/v1/scores/");
        rs_http_buf_url(b, a->event_id);
        rs_http_buf_printf(b, "/view\"><circle cx=\"%.1f\" cy=\"%.1f\" "
                              "r=\"%.1f\" fill=\"%s\" stroke=\"#7c2d12\" "
                              "stroke-width=\"1\"><title>",
                           x, y, r, col);
        rs_http_buf_html(b, a->event_id);
        RS_HTTP_LIT(b, " \xc2\xb7 ");
        rs_http_buf_html(b, a->counterparty_id);
        rs_http_buf_printf(b, " \xc2\xb7 weight %s</title></circle></a>\n",
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

/* The contributions as words and signed bars around one axis. */
static void rs_http_view_contrib(const rs_score_t *sc, rs_http_buf_t *b) {
    const rs_explanation_t *ex = &sc->explanation;
    int n = RS_MIN(RS_MAX(ex->n_contrib, 0), RS_MAX_CONTRIB);
    double amax = 0;
    char nb[64], nb2[64];
    for (int i = 0; i < n; i++)
        if (isfinite(ex->contrib[i].contribution))
            amax = RS_MAX(amax, fabs(ex->contrib[i].contribution));
    RS_HTTP_LIT(b, "<table class=\"contrib\" id=\"contrib\"><thead><tr><th>"
                   "</th><th>\xe2\x86\x90 lowers the risk \xc2\xb7 raises the "
                   "risk \xe2\x86\x92</th><th>logit</th></tr></thead>"
                   "<tbody>\n");
    for (int i = 0; i < n; i++) {
        const rs_contrib_t *c = &ex->contrib[i];
        double v = isfinite(c->contribution) ? c->contribution : 0;
        double pct = amax > 0 ? fabs(v) / amax * 100 : 0;
        int pos = v > 0;
        RS_HTTP_LIT(b, "<tr><td class=\"words\" title=\"");
        rs_http_buf_html(b, c->name);
        rs_http_buf_printf(b, " = %s\">",
                           rs_http_num(nb, sizeof(nb), "%.4g", c->value));
        if (c->text[0]) {
            rs_http_buf_html(b, c->text);
        } else {
            rs_http_buf_html(b, c->name);
            rs_http_buf_printf(b, " = %s", rs_http_num(nb, sizeof(nb), "%.4g",
                                                       c->value));
        }
        RS_HTTP_LIT(b, "</td><td class=\"barcell\"><div class=\"halves\">"
                       "<div class=\"l\">");
        if (!pos && v < 0)
            rs_http_buf_printf(b, "<div class=\"bar neg\" style=\"width:"
                                  "%.1f%%\"></div>", pct);
        RS_HTTP_LIT(b, "</div><div class=\"r\">");
        if (pos)
            rs_http_buf_printf(b, "<div class=\"bar pos\" style=\"width:"
                                  "%.1f%%\"></div>", pct);
        rs_http_buf_printf(b, "</div></div></td><td class=\"num %s\">%s%s"
                              "</td></tr>\n",
                           pos ? "pos" : "neg",
                           rs_http_num(nb2, sizeof(nb2), "%+.3f",
                                       c->contribution),
                           pos ? " raises" : v < 0 ? " lowers" : "");
    }
    RS_HTTP_LIT(b, "</tbody></table>\n");
}

static void rs_http_view_experts(const rs_score_t *sc, rs_http_buf_t *b) {
    const rs_explanation_t *ex = &sc->explanation;
    int n = RS_MIN(RS_MAX(ex->n_experts, 0), RS_MAX_EXPERTS);
    const double row = 22, x0 = 80, wmax = 300;
    char nb[64];
    double H = row * n + 6;
    rs_http_buf_printf(b,
        "<svg id=\"experts\" class=\"chart\" viewBox=\"0 0 460 %.0f\" "
        "width=\"460\" height=\"%.0f\" role=\"img\" "
        "aria-label=\"experts and gate weights\">\n",
        H, H);
    for (int i = 0; i < n; i++) {
        double g = ex->experts[i].gate_weight;
        double gv = isfinite(g) ? RS_MAX(0.0, RS_MIN(g, 1.0)) : 0;
        double y = 3 + row * i;
        rs_http_buf_printf(b,
            "<g class=\"row\"><text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\" "
            "class=\"name\">expert %u</text>\n"
            "<rect x=\"%.0f\" y=\"%.1f\" width=\"%.0f\" height=\"16\" "
            "fill=\"#e9ecef\"/>\n"
            "<rect class=\"gate\" x=\"%.0f\" y=\"%.1f\" width=\"%.1f\" "
            "height=\"16\" fill=\"#0f766e\"/>\n"
            "<text x=\"%.0f\" y=\"%.1f\" class=\"val\">%s</text></g>\n",
            x0 - 10, y + 13, ex->experts[i].expert, x0, y, wmax, x0, y,
            gv * wmax, x0 + wmax + 8, y + 13,
            rs_http_num(nb, sizeof(nb), "%.3f", g));
    }
    RS_HTTP_LIT(b, "</svg>\n");
}

/* ------------------------------------------------------------- case view */

/* The contribution whose words are `text` (a reason), or NULL. */
static const rs_contrib_t *rs_reason_contrib(const rs_explanation_t *ex,
                                             const char *text) {
    for (int i = 0; i < RS_MIN(ex->n_contrib, RS_MAX_CONTRIB); i++)
        if (ex->contrib[i].text[0] && !strcmp(ex->contrib[i].text, text))
            return &ex->contrib[i];
    return NULL;
}

static void rs_case_outcome(const rs_http_case_t *c, rs_http_buf_t *b) {
    const rs_score_t *sc = c->sc;
    const rs_http_outcome_t *o = c->outcome;
    char t[64];
    RS_HTTP_LIT(b, "<div id=\"outcome\"><h2>Outcome</h2>\n");
    if (o && o->present) {
        int fraud = !strcmp(o->outcome, "fraud");
        int alert = sc->decision == RS_DECISION_ALERT;
        rs_time_fmt(o->at_ms, t, sizeof(t));
        rs_http_buf_printf(b, "<div class=\"verdict %s\" id=\"verdict\" "
                              "data-outcome=\"%s\">%s</div>\n"
                              "<table class=\"meta\">",
                           fraud ? "fraud" : "genuine",
                           fraud ? "fraud" : "genuine",
                           fraud ? (alert ? "Confirmed: failure"
                                          : "Confirmed fraud")
                                 : (alert ? "Dismissed: false alarm"
                                          : "Dismissed: genuine"));
        if (o->analyst[0]) {
            RS_HTTP_LIT(b, "<tr><td>by</td><td>");
            rs_http_buf_html(b, o->analyst);
            RS_HTTP_LIT(b, "</td></tr>");
        }
        rs_http_buf_printf(b, "<tr><td>at</td><td>%s</td></tr>", t);
        if (o->topic[0]) {
            rs_http_buf_printf(b, "<tr><td>label</td><td>value %.0f sent to "
                                  "topic &#39;",
                               o->value);
            rs_http_buf_html(b, o->topic);
            RS_HTTP_LIT(b, "&#39;</td></tr>");
        }
        if (o->note[0]) {
            RS_HTTP_LIT(b, "<tr><td>note</td><td>");
            rs_http_buf_html(b, o->note);
            RS_HTTP_LIT(b, "</td></tr>");
        }
        RS_HTTP_LIT(b, "</table></div>\n");
        return;
    }
    RS_HTTP_LIT(b, "<p class=\"none\">Open: no analyst outcome yet.</p>\n"
                   "<div id=\"label-form\" data-url=\"/v1/scores/");
    rs_http_buf_url(b, sc->event_id);
    RS_HTTP_LIT(b, "/label\"><input id=\"analyst\" maxlength=\"63\" "
                   "placeholder=\"your name (optional)\" "
                   "autocomplete=\"name\"><input id=\"note\" "
                   "maxlength=\"255\" placeholder=\"note (optional)\">\n");
    const char *dis = c->labels ? "" : " disabled";
    /* an alert (sensor) is a failure or a false alarm; the label is the
     * same: 1 or 0 */
    int alert = sc->decision == RS_DECISION_ALERT;
    rs_http_buf_printf(b, "<button type=\"button\" class=\"btn fraud\" "
                          "id=\"btn-fraud\" data-outcome=\"fraud\"%s>%s"
                          "</button><button type=\"button\" "
                          "class=\"btn genuine\" id=\"btn-genuine\" "
                          "data-outcome=\"genuine\"%s>%s</button>\n",
                       dis, alert ? "Confirm failure" : "Confirm fraud", dis,
                       alert ? "Dismiss (false alarm)" : "Dismiss (genuine)");
    if (c->labels) {
        RS_HTTP_LIT(b, "<div class=\"note\">sends a Label (1 = confirmed, "
                       "0 = dismissed) to topic &#39;");
        rs_http_buf_html(b, c->labels_topic ? c->labels_topic : "");
        RS_HTTP_LIT(b, "&#39;: the model learns from it</div>");
    } else {
        RS_HTTP_LIT(b, "<div class=\"note\">labelling is off: this API has "
                       "no Kafka producer (run <code>riskstream api</code> "
                       "with --brokers, or the API inside serve)</div>");
    }
    RS_HTTP_LIT(b, "<div id=\"label-status\" role=\"status\"></div></div>"
                   "</div>\n");
}

static void rs_case_event(const rs_http_case_t *c, rs_http_buf_t *b) {
    const rs_score_t *sc = c->sc;
    const rs_event_fields_t *ef = &sc->event;
    char nb[48];
    RS_HTTP_LIT(b, "<div class=\"card\"><h2>The event");
    if (ef->present && ef->type[0]) {
        RS_HTTP_LIT(b, " <span class=\"note\">");
        rs_http_buf_html(b, ef->type);
        RS_HTTP_LIT(b, "</span>");
    }
    RS_HTTP_LIT(b, "</h2>\n");
    if (!ef->present) {
        RS_HTTP_LIT(b, "<p class=\"none\">This record was written before "
                       "scores carried their event's fields.</p></div>\n");
        return;
    }
    RS_HTTP_LIT(b, "<dl class=\"fields\" id=\"event-fields\">");
    if (rs_show_amount(ef))
        rs_http_buf_printf(b, "<div><dt>amount</dt><dd class=\"f-amount\">%s"
                              "</dd></div>",
                           rs_http_num(nb, sizeof(nb), "%.2f", ef->amount));
    if (ef->counterparty_id[0]) {
        RS_HTTP_LIT(b, "<div><dt>counterparty</dt><dd class=\"f-cp\">");
        rs_http_buf_html(b, ef->counterparty_id);
        RS_HTTP_LIT(b, "</dd></div>");
    }
    for (int i = 0; i < ef->n_categ; i++) {
        RS_HTTP_LIT(b, "<div><dt>");
        rs_http_buf_html(b, ef->categ[i].name);
        RS_HTTP_LIT(b, "</dt><dd class=\"f-cat\">");
        rs_http_buf_html(b, ef->categ[i].value);
        RS_HTTP_LIT(b, "</dd></div>");
    }
    for (int i = 0; i < ef->n_numeric; i++) {
        RS_HTTP_LIT(b, "<div><dt>");
        rs_http_buf_html(b, ef->numeric[i].name);
        rs_http_buf_printf(b, "</dt><dd class=\"f-num\">%s</dd></div>",
                           rs_http_num(nb, sizeof(nb), "%.6g",
                                       ef->numeric[i].value));
    }
    RS_HTTP_LIT(b, "</dl>\n");
    rs_trends(b, c->hist, c->nhist, ef, sc->event_id);
    RS_HTTP_LIT(b, "</div>\n");
}

void rs_http_render_case(const rs_http_chrome_t *ch, const rs_http_case_t *c,
                         rs_http_buf_t *b) {
    const rs_score_t *sc = c->sc;
    const rs_explanation_t *ex = &sc->explanation;
    char t1[64], t2[64], nb[64];
    const char *dcol = rs_http_decision_colour(sc->decision);
    double sv = isfinite(sc->score) ? RS_MAX(0.0, RS_MIN(sc->score, 1.0)) : 0;

    rs_page_head(b, "event ", sc->event_id);
    rs_page_top(ch, b);

    /* the decision and its facts; the outcome and the label action */
    RS_HTTP_LIT(b, "<div class=\"card split\"><div><h1>event ");
    rs_http_buf_html(b, sc->event_id);
    rs_http_buf_printf(b, "</h1>\n<div><span class=\"score\">%s</span>",
                       rs_http_num(nb, sizeof(nb), "%.4f", sc->score));
    rs_badge(b, sc->decision);
    rs_http_buf_printf(b,
        "</div>\n<svg id=\"gauge\" viewBox=\"0 0 400 14\" width=\"400\" "
        "height=\"14\"><rect x=\"0\" y=\"2\" width=\"400\" height=\"10\" "
        "rx=\"5\" fill=\"#e9ecef\"/><rect x=\"0\" y=\"2\" width=\"%.1f\" "
        "height=\"10\" rx=\"5\" fill=\"%s\"/></svg>\n",
        400 * sv, dcol);
    rs_time_fmt(sc->event_time_ms, t1, sizeof(t1));
    rs_time_fmt(sc->scored_at_ms, t2, sizeof(t2));
    RS_HTTP_LIT(b, "<table class=\"meta\"><tr><td>entity</td><td>");
    rs_link_entity(b, sc->entity_id);
    RS_HTTP_LIT(b, "</td></tr><tr><td>model version</td><td>");
    rs_http_buf_html(b, sc->model_version);
    rs_http_buf_printf(b,
        "</td></tr><tr><td>event time</td><td>%s</td></tr>"
        "<tr><td>scored at</td><td>%s</td></tr>"
        "<tr><td>latency</td><td>%.3f ms%s</td></tr></table>\n",
        t1, t2, (double)sc->latency_us / 1000.0,
        (sc->flags & RS_SCORE_FLAG_LATE) ? " (late event)" : "");
    if (c->json_href) {
        RS_HTTP_LIT(b, "<div class=\"meta\"><a id=\"raw\" href=\"");
        rs_http_buf_html(b, c->json_href);
        RS_HTTP_LIT(b, "\">raw JSON record</a></div>\n");
    }
    RS_HTTP_LIT(b, "</div><div>");
    rs_case_outcome(c, b);
    RS_HTTP_LIT(b, "</div></div>\n");

    rs_case_event(c, b);

    /* why: reasons (each a contribution that raised the risk) and bars */
    RS_HTTP_LIT(b, "<div class=\"card\"><h2>Why <span class=\"note\">red "
                   "raises the risk, blue lowers it (contribution to the "
                   "logit)</span></h2>\n");
    int nr = RS_MIN(RS_MAX(ex->n_reasons, 0), RS_MAX_REASONS);
    if (nr == 0) {
        RS_HTTP_LIT(b, "<p class=\"none\">no reasons recorded</p>\n");
    } else {
        RS_HTTP_LIT(b, "<ul id=\"reasons\">\n");
        for (int i = 0; i < nr; i++) {
            const rs_contrib_t *rc = rs_reason_contrib(ex, ex->reasons[i]);
            RS_HTTP_LIT(b, "<li><span class=\"up\">\xe2\x96\xb2</span>");
            rs_http_buf_html(b, ex->reasons[i]);
            if (rc)
                rs_http_buf_printf(b, " <span class=\"num pos\">%s</span>",
                                   rs_http_num(nb, sizeof(nb), "%+.3f",
                                               rc->contribution));
            RS_HTTP_LIT(b, "</li>\n");
        }
        RS_HTTP_LIT(b, "</ul>\n");
    }
    if (ex->n_contrib <= 0)
        RS_HTTP_LIT(b, "<p class=\"none\">no contributions recorded</p>\n");
    else
        rs_http_view_contrib(sc, b);
    RS_HTTP_LIT(b, "</div>\n");

    /* the entity's recent events, this one highlighted */
    RS_HTTP_LIT(b, "<div class=\"card\"><h2>Recent events of ");
    rs_link_entity(b, sc->entity_id);
    if (c->hist_newer > 0)
        rs_http_buf_printf(b, " <span class=\"note\">%d newer, this one "
                              "highlighted</span>",
                           c->hist_newer);
    RS_HTTP_LIT(b, "</h2>\n");
    if (c->nhist <= 0)
        RS_HTTP_LIT(b, "<p class=\"none\">no other events indexed</p>\n");
    else
        rs_list_table(b, "history", c->hist, c->hist_out, c->nhist,
                      sc->event_id, 0, 1);
    RS_HTTP_LIT(b, "</div>\n");

    RS_HTTP_LIT(b, "<div class=\"card\"><h2>History the model attended to "
                   "<span class=\"note\">past events of this entity; circle "
                   "size and colour = attention weight</span></h2>\n");
    rs_http_view_timeline(sc, b);
    int na = RS_MIN(RS_MAX(ex->n_attended, 0), RS_MAX_ATTEND);
    if (na == 0) {
        RS_HTTP_LIT(b, "<p class=\"none\">no attended events</p>\n");
    } else {
        RS_HTTP_LIT(b, "<table class=\"list\" id=\"attended\"><thead><tr>"
                       "<th>event</th><th>time (UTC)</th><th>amount</th>"
                       "<th>counterparty</th><th>weight</th></tr></thead>"
                       "<tbody>\n");
        for (int i = 0; i < na; i++) {
            const rs_attended_t *a = &ex->attended[i];
            rs_time_fmt(a->event_time_ms, t1, sizeof(t1));
            RS_HTTP_LIT(b, "<tr><td>");
            rs_link_case(b, a->event_id);
            rs_http_buf_printf(b, "</td><td>%s</td><td class=\"num\">%s</td>"
                                  "<td>",
                               t1,
                               rs_http_num(nb, sizeof(nb), "%.2f", a->amount));
            rs_http_buf_html(b, a->counterparty_id);
            rs_http_buf_printf(b, "</td><td class=\"num\">%s</td></tr>\n",
                               rs_http_num(nb, sizeof(nb), "%.3f", a->weight));
        }
        RS_HTTP_LIT(b, "</tbody></table>\n");
    }
    RS_HTTP_LIT(b, "</div>\n");

    RS_HTTP_LIT(b, "<div class=\"card\"><h2>Experts and gate weights</h2>\n");
    if (ex->n_experts <= 0)
        RS_HTTP_LIT(b, "<p class=\"none\">none recorded</p>\n");
    else
        rs_http_view_experts(sc, b);
    RS_HTTP_LIT(b, "</div>\n");
    rs_page_end(b);
}

void rs_http_render_view(const rs_score_t *sc, const char *json_href,
                         rs_http_buf_t *b) {
    rs_http_case_t c;
    rs_http_outcome_t none;
    memset(&c, 0, sizeof(c));
    memset(&none, 0, sizeof(none));
    c.sc = sc;
    c.outcome = &none;
    c.json_href = json_href;
    rs_http_render_case(NULL, &c, b);
}

/* ------------------------------------------------------------ the queue */

static void rs_qf_input(rs_http_buf_t *b, const char *label, const char *name,
                        const char *value, const char *ph) {
    rs_http_buf_printf(b, "<label>%s<input name=\"%s\" id=\"f-%s\" value=\"",
                       label, name, name);
    rs_http_buf_html(b, value);
    rs_http_buf_printf(b, "\" placeholder=\"%s\"></label>", ph);
}

static void rs_qf_option(rs_http_buf_t *b, const char *v, const char *text,
                         const char *cur) {
    rs_http_buf_printf(b, "<option value=\"%s\"%s>%s</option>", v,
                       !strcmp(v, cur) ? " selected" : "", text);
}

/* The query string of `qf` (without cursor), '&'-joined, HTML-escaped. */
static void rs_qf_query(rs_http_buf_t *b, const rs_http_qf_t *qf) {
    struct { const char *k, *v; } kv[] = {
        {"decision", qf->decision}, {"since", qf->since},
        {"until", qf->until},       {"min_score", qf->min_score},
        {"entity", qf->entity},     {"status", qf->status}};
    int first = 1;
    for (size_t i = 0; i < RS_ARRAY_LEN(kv); i++) {
        if (!kv[i].v[0]) continue;
        rs_http_buf_printf(b, "%s%s=", first ? "" : "&amp;", kv[i].k);
        rs_http_buf_url(b, kv[i].v);
        first = 0;
    }
    if (qf->limit)
        rs_http_buf_printf(b, "%slimit=%d", first ? "" : "&amp;", qf->limit);
}

void rs_http_render_queue(const rs_http_chrome_t *ch, const rs_http_qf_t *qf,
                          const rs_http_list_t *l, rs_http_buf_t *b) {
    rs_page_head(b, "alert queue", NULL);
    rs_page_top(ch, b);
    RS_HTTP_LIT(b, "<div class=\"card\"><h1>Alert queue <span class=\"note\">"
                   "review, decline and alert decisions, newest event time "
                   "first</span></h1>\n<form class=\"filters\" id=\"filters\" "
                   "method=\"get\" action=\"/v1/alerts/view\">"
                   "<label>decision<select name=\"decision\" "
                   "id=\"f-decision\">");
    rs_qf_option(b, "", "all alerts", qf->decision);
    rs_qf_option(b, "review", "review", qf->decision);
    rs_qf_option(b, "decline", "decline", qf->decision);
    rs_qf_option(b, "alert", "alert", qf->decision);
    RS_HTTP_LIT(b, "</select></label>");
    rs_qf_input(b, "since", "since", qf->since, "7d or 2026-11-22");
    rs_qf_input(b, "until", "until", qf->until, "1h or ISO time");
    rs_qf_input(b, "min score", "min_score", qf->min_score, "0.9");
    rs_qf_input(b, "entity", "entity", qf->entity, "entity id");
    RS_HTTP_LIT(b, "<label>outcome<select name=\"status\" id=\"f-status\">");
    rs_qf_option(b, "", "any", qf->status);
    rs_qf_option(b, "open", "open", qf->status);
    rs_qf_option(b, "labelled", "labelled", qf->status);
    RS_HTTP_LIT(b, "</select></label><button type=\"submit\">Filter</button>"
                   "<a href=\"/v1/alerts/view\">reset</a></form></div>\n"
                   "<div class=\"card\">");
    if (l->n == 0) {
        RS_HTTP_LIT(b, "<p class=\"none\" id=\"empty\">no alerts match</p>");
    } else {
        rs_list_table(b, "queue", l->rows, l->outs, l->n, NULL, 1, 1);
    }
    RS_HTTP_LIT(b, "<div class=\"pager\">");
    RS_HTTP_LIT(b, "<a id=\"newest\" href=\"/v1/alerts/view?");
    rs_qf_query(b, qf);
    RS_HTTP_LIT(b, "\">\xe2\x86\x90 newest</a>");
    if (l->more) {
        RS_HTTP_LIT(b, "<a id=\"older\" href=\"/v1/alerts/view?");
        rs_qf_query(b, qf);
        rs_http_buf_printf(b, "&amp;before=%" PRId64 ":", l->next_t);
        rs_http_buf_url(b, l->next_id);
        RS_HTTP_LIT(b, "\">older \xe2\x86\x92</a>");
    }
    rs_http_buf_printf(b, "<span class=\"note\">%d shown, %d index entries "
                          "examined</span>",
                       l->n, l->scanned);
    RS_HTTP_LIT(b, "</div>");
    if (l->capped)
        RS_HTTP_LIT(b, "<p class=\"note\" id=\"capped\">The search stopped "
                       "at its bound before filling the page: narrow the "
                       "time range (since/until) to look further back, or "
                       "follow \"older\".</p>");
    RS_HTTP_LIT(b, "</div>\n");
    rs_page_end(b);
}

/* ---------------------------------------------------------- entity page */

void rs_http_render_entity(const rs_http_chrome_t *ch, const char *entity,
                           const rs_http_list_t *l, int first_page,
                           rs_http_buf_t *b) {
    rs_page_head(b, "entity ", entity);
    rs_page_top(ch, b);
    RS_HTTP_LIT(b, "<div class=\"card\"><h1>entity ");
    rs_http_buf_html(b, entity);
    RS_HTTP_LIT(b, "</h1><div class=\"meta\"><a href=\"/v1/entities/");
    rs_http_buf_url(b, entity);
    RS_HTTP_LIT(b, "/scores\">raw JSON records</a> \xc2\xb7 <a href=\""
                   "/v1/alerts/view?entity=");
    rs_http_buf_url(b, entity);
    RS_HTTP_LIT(b, "\">its alerts</a></div>\n");
    if (l->n > 0 && l->rows[0]->event.present)
        rs_trends(b, l->rows, l->n, &l->rows[0]->event, NULL);
    RS_HTTP_LIT(b, "</div><div class=\"card\"><h2>Events, newest first</h2>");
    if (l->n == 0)
        RS_HTTP_LIT(b, "<p class=\"none\" id=\"empty\">no events indexed for "
                       "this entity (unknown, or expired after redis.ttl)"
                       "</p>");
    else
        rs_list_table(b, "events", l->rows, l->outs, l->n, NULL, 0, 1);
    RS_HTTP_LIT(b, "<div class=\"pager\">");
    if (!first_page) {
        RS_HTTP_LIT(b, "<a id=\"newest\" href=\"/v1/entities/");
        rs_http_buf_url(b, entity);
        RS_HTTP_LIT(b, "/view\">\xe2\x86\x90 newest</a>");
    }
    if (l->more) {
        RS_HTTP_LIT(b, "<a id=\"older\" href=\"/v1/entities/");
        rs_http_buf_url(b, entity);
        rs_http_buf_printf(b, "/view?before=%" PRId64 ":", l->next_t);
        rs_http_buf_url(b, l->next_id);
        RS_HTTP_LIT(b, "\">older \xe2\x86\x92</a>");
    }
    RS_HTTP_LIT(b, "</div></div>\n");
    rs_page_end(b);
}

/* ------------------------------------------------------- sign-in, search */

void rs_http_render_login(const char *next, int failed, rs_http_buf_t *b) {
    rs_page_head(b, "sign in", NULL);
    RS_HTTP_LIT(b, "<main><div class=\"card login\"><h1>riskstream</h1>"
                   "<p>This API needs its bearer token (the value of the "
                   "environment variable named by <code>http.token_env</code>)."
                   "</p>");
    if (failed)
        RS_HTTP_LIT(b, "<p class=\"pos\" id=\"login-failed\">The token was "
                       "not accepted.</p>");
    RS_HTTP_LIT(b, "<form id=\"login\" data-next=\"");
    /* only a local path: never an absolute URL (open redirect) */
    if (next && next[0] == '/' && next[1] != '/' && next[1] != '\\')
        rs_http_buf_html(b, next);
    else
        RS_HTTP_LIT(b, "/v1/alerts/view");
    RS_HTTP_LIT(b, "\"><input type=\"password\" id=\"token\" "
                   "autocomplete=\"current-password\" placeholder=\"token\" "
                   "required><button class=\"btn genuine\" type=\"submit\">"
                   "Sign in</button></form><p class=\"note\">Kept in a "
                   "cookie of this site (SameSite) and sent as the "
                   "Authorization header of label actions.</p></div>"
                   "</main></body></html>\n");
}

void rs_http_render_notfound(const rs_http_chrome_t *ch, const char *q,
                             rs_http_buf_t *b) {
    rs_page_head(b, "not found", NULL);
    rs_page_top(ch, b);
    RS_HTTP_LIT(b, "<div class=\"card\"><h1 id=\"notfound\">Nothing found for "
                   "&ldquo;");
    rs_http_buf_html(b, q ? q : "");
    RS_HTTP_LIT(b, "&rdquo;</h1><p>No score with this event id and no entity "
                   "with indexed events (records expire after "
                   "<code>redis.ttl</code>).</p></div>\n");
    rs_page_end(b);
}

/* ---------------------------------------------------------------- script */

const char rs_http_js[] =
    "/* riskstream pages: sign-in, sign-out, the label action. */\n"
    "(function () {\n"
    "  'use strict';\n"
    "  function token() {\n"
    "    var m = document.cookie.match(/(?:^|; )rs_token=([^;]*)/);\n"
    "    return m ? decodeURIComponent(m[1]) : '';\n"
    "  }\n"
    "  function $(id) { return document.getElementById(id); }\n"
    "  var login = $('login');\n"
    "  if (login) login.addEventListener('submit', function (e) {\n"
    "    e.preventDefault();\n"
    "    document.cookie = 'rs_token=' + encodeURIComponent($('token').value)"
    " +\n"
    "      '; Path=/; SameSite=Lax';\n"
    "    location.href = login.getAttribute('data-next') || '/';\n"
    "  });\n"
    "  var out = $('signout');\n"
    "  if (out) out.addEventListener('click', function (e) {\n"
    "    e.preventDefault();\n"
    "    document.cookie = 'rs_token=; Path=/; Max-Age=0; SameSite=Lax';\n"
    "    location.href = '/login';\n"
    "  });\n"
    "  var form = $('label-form');\n"
    "  if (!form) return;\n"
    "  var who = $('analyst');\n"
    "  try { if (who && !who.value) who.value ="
    " localStorage.getItem('rs_analyst') || ''; } catch (x) {}\n"
    "  function say(s) { $('label-status').textContent = s; }\n"
    "  form.addEventListener('click', function (e) {\n"
    "    var b = e.target.closest('button[data-outcome]');\n"
    "    if (!b || b.disabled) return;\n"
    "    e.preventDefault();\n"
    "    var body = {outcome: b.getAttribute('data-outcome')};\n"
    "    if (who && who.value) {\n"
    "      body.analyst = who.value;\n"
    "      try { localStorage.setItem('rs_analyst', who.value); } catch (x) {}\n"
    "    }\n"
    "    if ($('note').value) body.note = $('note').value;\n"
    "    var h = {'Content-Type': 'application/json'};\n"
    "    if (token()) h.Authorization = 'Bearer ' + token();\n"
    "    var btns = form.querySelectorAll('button');\n"
    "    for (var i = 0; i < btns.length; i++) btns[i].disabled = true;\n"
    "    say('sending the label\\u2026');\n"
    "    fetch(form.getAttribute('data-url'), {method: 'POST', headers: h,\n"
    "        body: JSON.stringify(body), credentials: 'omit'})\n"
    "      .then(function (r) {\n"
    "        return r.json().then(function (j) { return {r: r, j: j}; });\n"
    "      })\n"
    "      .then(function (x) {\n"
    "        if (x.r.ok) { location.reload(); return; }\n"
    "        say((x.j && x.j.error) || ('error ' + x.r.status));\n"
    "        for (var i = 0; i < btns.length; i++) btns[i].disabled = false;\n"
    "      })\n"
    "      .catch(function (err) {\n"
    "        say('error: ' + err);\n"
    "        for (var i = 0; i < btns.length; i++) btns[i].disabled = false;\n"
    "      });\n"
    "  });\n"
    "})();\n";

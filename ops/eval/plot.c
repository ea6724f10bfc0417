/* plot.c -- hand-written SVG line chart of the daily metrics of a report:
 * three panels (ROC AUC, average precision with the base rate, alerts per
 * day with the positives) sharing the day axis, one line per model, a
 * legend and a title.  No dependency: the SVG is printed into
 * a memory stream (open_memstream) and returned; the caller writes it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval.h"

#define RS_PLOT_W      960
#define RS_PLOT_PANEL  300   /* height of one panel's plotting area */
#define RS_PLOT_LEFT    70
#define RS_PLOT_RIGHT   30
#define RS_PLOT_TOP    100   /* title + legends */
#define RS_PLOT_GAP     70   /* between panels (x labels + panel title) */
#define RS_PLOT_BOTTOM  60

static const char *const rs_plot_colors[] = {"#d62728", "#1f77b4", "#2ca02c",
                                             "#9467bd"};

/* XML-escape a short text. */
static void rs_plot_text(FILE *fp, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", fp); break;
        case '>': fputs("&gt;", fp); break;
        case '&': fputs("&amp;", fp); break;
        case '"': fputs("&quot;", fp); break;
        default: fputc(*s, fp);
        }
    }
}

/* which: 0 AUC, 1 AP, 2 alerts per day (count) */
static double rs_plot_val(const rs_eval_day_t *d, int k, int which) {
    return which == 2 ? (double)d->m[k].alerts
                      : which ? d->m[k].ap : d->m[k].auc;
}

/* The base rate of a day: the AP of a random score. */
static double rs_plot_base(const rs_eval_day_t *d) {
    return d->events ? (double)d->positives / (double)d->events : NAN;
}

/* One panel at vertical offset y0: frame, grid, y ticks, x ticks, lines. */
static void rs_plot_panel(FILE *fp, const rs_eval_report_t *rep, int which,
                          double y0, const char *title) {
    const double x0 = RS_PLOT_LEFT, pw = RS_PLOT_W - RS_PLOT_LEFT - RS_PLOT_RIGHT,
                 ph = RS_PLOT_PANEL;
    /* y range: the data rounded out to 0.1, within [0, 1] */
    double lo = 1, hi = 0, step;
    if (which == 2) {
        /* counts from 0 to a round maximum (positives per day included) */
        lo = 0;
        hi = 1;
        for (int d = 0; d < rep->ndays; d++) {
            if ((double)rep->days[d].positives > hi) hi = (double)rep->days[d].positives;
            for (int k = 0; k < rep->nmodels; k++)
                if (rs_plot_val(&rep->days[d], k, 2) > hi)
                    hi = rs_plot_val(&rep->days[d], k, 2);
        }
        double mag = pow(10, floor(log10(hi)));
        step = hi / mag <= 2 ? mag / 4 : hi / mag <= 5 ? mag / 2 : mag;
        hi = ceil(hi / step) * step;
    } else {
        for (int d = 0; d < rep->ndays; d++) {
            for (int k = 0; k < rep->nmodels; k++) {
                double v = rs_plot_val(&rep->days[d], k, which);
                if (isnan(v)) continue;
                if (v < lo) lo = v;
                if (v > hi) hi = v;
            }
            double b = rs_plot_base(&rep->days[d]);
            if (which == 1 && !isnan(b) && b < lo) lo = b;
        }
        if (lo > hi) { lo = 0; hi = 1; }
        lo = floor(lo * 10 - 1e-9) / 10;
        hi = ceil(hi * 10 + 1e-9) / 10;
        if (lo < 0) lo = 0;
        if (hi > 1) hi = 1;
        if (hi - lo < 0.2) { if (hi < 1) hi = fmin(1, lo + 0.2); else lo = hi - 0.2; }
        step = hi - lo > 0.5 ? 0.1 : 0.05;
    }
    int nd = rep->ndays;
#define RS_X(i) (x0 + (nd > 1 ? pw * (double)(i) / (double)(nd - 1) : pw / 2))
#define RS_Y(v) (y0 + ph - ph * ((v) - lo) / (hi - lo))
    fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\" class=\"ptitle\">", x0, y0 - 12);
    rs_plot_text(fp, title);
    fputs("</text>\n", fp);
    fprintf(fp, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
            "fill=\"#fff\" stroke=\"#444\"/>\n", x0, y0, pw, ph);
    for (double v = lo; v <= hi + 1e-9; v += step) {
        double y = RS_Y(v);
        fprintf(fp, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                "stroke=\"#ddd\"/>\n", x0, y, x0 + pw, y);
        if (which == 2)
            fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\" class=\"ytick\">%.0f</text>\n",
                    x0 - 8, y + 4, v);
        else
            fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\" class=\"ytick\">%.2f</text>\n",
                    x0 - 8, y + 4, v);
    }
    /* x ticks: about 10 labelled days */
    int every = nd > 10 ? (nd + 9) / 10 : 1;
    for (int d = 0; d < nd; d++) {
        double x = RS_X(d);
        fprintf(fp, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                "stroke=\"#444\"/>\n", x, y0 + ph, x, y0 + ph + 4);
        if (d % every && d != nd - 1) continue;
        char t[40];
        rs_time_fmt(rep->days[d].day_ms, t, sizeof(t));
        fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\" class=\"xtick\">%.5s</text>\n",
                x, y0 + ph + 18, t + 5);
    }
    /* reference line: the base rate (AP panel: a random score's AP) or
     * the positives per day (alerts panel: what a perfect alerter flags) */
    if (which >= 1) {
        fputs("<path fill=\"none\" stroke=\"#777\" stroke-width=\"1.5\" "
              "stroke-dasharray=\"6,4\" d=\"", fp);
        int pen = 0;
        for (int d = 0; d < nd; d++) {
            double v = which == 1 ? rs_plot_base(&rep->days[d])
                                  : (double)rep->days[d].positives;
            if (isnan(v)) { pen = 0; continue; }
            fprintf(fp, "%c%.1f,%.1f ", pen ? 'L' : 'M', RS_X(d), RS_Y(v));
            pen = 1;
        }
        fputs("\"/>\n", fp);
    }
    /* one polyline per model; NaN days break it */
    for (int k = 0; k < rep->nmodels; k++) {
        const char *col = rs_plot_colors[k % 4];
        fprintf(fp, "<path fill=\"none\" stroke=\"%s\" stroke-width=\"2\" d=\"",
                col);
        int pen = 0;
        for (int d = 0; d < nd; d++) {
            double v = rs_plot_val(&rep->days[d], k, which);
            if (isnan(v)) { pen = 0; continue; }
            fprintf(fp, "%c%.1f,%.1f ", pen ? 'L' : 'M', RS_X(d), RS_Y(v));
            pen = 1;
        }
        fputs("\"/>\n", fp);
        for (int d = 0; d < nd; d++) {
            double v = rs_plot_val(&rep->days[d], k, which);
            if (isnan(v)) continue;
            fprintf(fp, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"/>\n",
                    RS_X(d), RS_Y(v), col);
        }
    }
#undef RS_X
#undef RS_Y
}

char *rs_eval_plot_svg(const rs_eval_report_t *rep, const char *title) {
    if (!rep || rep->ndays < 1) return NULL;
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);
    if (!fp) return NULL;
    int h = RS_PLOT_TOP + 3 * RS_PLOT_PANEL + 2 * RS_PLOT_GAP + RS_PLOT_BOTTOM;
    fprintf(fp,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "viewBox=\"0 0 %d %d\" font-family=\"DejaVu Sans, Arial, sans-serif\">\n"
            "<style>.title{font-size:18px;font-weight:bold}"
            ".ptitle{font-size:14px;font-weight:bold}"
            ".ytick{font-size:11px;text-anchor:end}"
            ".xtick{font-size:11px;text-anchor:middle}"
            ".legend{font-size:13px}.axis{font-size:12px;text-anchor:middle}"
            "</style>\n"
            "<rect width=\"100%%\" height=\"100%%\" fill=\"#fafafa\"/>\n",
            RS_PLOT_W, h, RS_PLOT_W, h);
    fprintf(fp, "<text x=\"%d\" y=\"28\" class=\"title\">", RS_PLOT_LEFT);
    rs_plot_text(fp, title && *title ? title : "riskstream eval: daily metrics");
    fputs("</text>\n", fp);
    /* legend: one swatch per model */
    double lx = RS_PLOT_LEFT;
    for (int k = 0; k < rep->nmodels; k++) {
        const char *col = rs_plot_colors[k % 4];
        fprintf(fp, "<line x1=\"%.1f\" y1=\"48\" x2=\"%.1f\" y2=\"48\" "
                "stroke=\"%s\" stroke-width=\"3\"/>", lx, lx + 24, col);
        fprintf(fp, "<text x=\"%.1f\" y=\"52\" class=\"legend\">model ", lx + 30);
        rs_plot_text(fp, rep->model[k]);
        fprintf(fp, " (overall AUC %.3f, AP %.3f)</text>\n",
                rep->overall.m[k].auc, rep->overall.m[k].ap);
        lx += 300;
    }
    fprintf(fp, "<line x1=\"%.1f\" y1=\"68\" x2=\"%.1f\" y2=\"68\" "
            "stroke=\"#777\" stroke-width=\"2\" stroke-dasharray=\"6,4\"/>"
            "<text x=\"%.1f\" y=\"72\" class=\"legend\">base rate (AP of a "
            "random score) / positives per day</text>\n", (double)RS_PLOT_LEFT,
            RS_PLOT_LEFT + 24.0, RS_PLOT_LEFT + 30.0);
    double y1 = RS_PLOT_TOP + 10;
    rs_plot_panel(fp, rep, 0, y1, "ROC AUC per day (prequential)");
    double y2 = y1 + RS_PLOT_PANEL + RS_PLOT_GAP;
    rs_plot_panel(fp, rep, 1, y2, "Average precision per day (prequential; "
                  "dashed: base rate)");
    double y3 = y2 + RS_PLOT_PANEL + RS_PLOT_GAP;
    char t3[200];
    snprintf(t3, sizeof(t3), "Alerts per day (%s; dashed: positives)",
             rep->alert_rule[0] ? rep->alert_rule : "score >= threshold");
    rs_plot_panel(fp, rep, 2, y3, t3);
    fprintf(fp, "<text x=\"%d\" y=\"%d\" class=\"axis\">day (UTC, MM-DD)</text>\n",
            RS_PLOT_LEFT + (RS_PLOT_W - RS_PLOT_LEFT - RS_PLOT_RIGHT) / 2,
            (int)(y3 + RS_PLOT_PANEL + 42));
    fputs("</svg>\n", fp);
    if (fclose(fp) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

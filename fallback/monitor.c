/* monitor.c — probe-window and whole-answer confidence judging (monitor.h). */
#include "monitor.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct sw_monitor {
    sw_monitor_params p;
    sw_monitor_mode mode;
    sw_monitor_verdict verdict;
    int32_t n;
    double sum_logprob, sum_entropy;
    int32_t n_low;
    double low_logprob; /* log(low_prob) */
    sw_monitor_stats decided; /* frozen at the verdict */
    sw_share_ctl *budget;     /* self-calibrating: borrowed; NULL: none */
    char *held;
    size_t held_len, held_cap;
};

void sw_monitor_params_default(sw_monitor_params *p) {
    p->enabled = true;
    p->probe_tokens = 16;
    p->min_tokens = 4;
    p->low_prob = 0.1f;
    p->cloud_share = SW_MONITOR_DEFAULT_SHARE;
    p->min_mean_logprob = NAN;
    p->max_low_share = NAN;
    p->max_mean_entropy = NAN;
}

double sw_monitor_score(double mean_logprob) {
    return isfinite(mean_logprob) ? 1.0 - exp(fmin(mean_logprob, 0.0)) : 1.0;
}

/* 1 - exp(-x) at the midpoints of 16 equal steps of x over [0.05, 1.5] nats */
static const double k_prior[] = {
    0.0909, 0.1697, 0.2416, 0.3073, 0.3673, 0.4221, 0.4722, 0.5179,
    0.5597, 0.5979, 0.6327, 0.6645, 0.6936, 0.7201, 0.7444, 0.7665};

const double *sw_monitor_share_prior(int32_t *n) {
    *n = (int32_t)(sizeof k_prior / sizeof k_prior[0]);
    return k_prior;
}

const char *sw_monitor_verdict_str(sw_monitor_verdict v) {
    switch (v) {
    case SW_MONITOR_PROBING: return "probing";
    case SW_MONITOR_PASS: return "pass";
    case SW_MONITOR_ESCALATE: return "escalate";
    }
    return "?";
}

sw_status sw_monitor_create(const sw_monitor_params *p, sw_monitor_mode mode, sw_monitor **out,
                            sw_err *err) {
    if (!out) return sw_err_set(err, SW_E_INVALID_ARG, "sw_monitor_create: out is NULL");
    *out = NULL;
    sw_monitor *m = calloc(1, sizeof *m);
    if (!m) return sw_err_set(err, SW_E_NOMEM, "sw_monitor_create: out of memory");
    if (p) m->p = *p;
    else sw_monitor_params_default(&m->p);
    if (m->p.probe_tokens <= 0) m->p.probe_tokens = 16;
    if (m->p.min_tokens < 0) m->p.min_tokens = 0;
    if (!(m->p.low_prob > 0 && m->p.low_prob <= 1)) {
        float lp = m->p.low_prob;
        free(m);
        return sw_err_set(err, SW_E_INVALID_ARG, "monitor.low_prob: %g is not in (0, 1]", lp);
    }
    if (!isnan(m->p.cloud_share) && !(m->p.cloud_share >= 0 && m->p.cloud_share <= 1)) {
        float cs = m->p.cloud_share;
        free(m);
        return sw_err_set(err, SW_E_INVALID_ARG, "monitor.cloud_share: %g is not in [0, 1]", cs);
    }
    m->low_logprob = log((double)m->p.low_prob);
    m->mode = mode;
    m->verdict = m->p.enabled ? SW_MONITOR_PROBING : SW_MONITOR_PASS;
    m->decided.verdict = m->verdict;
    m->decided.failed_check = "";
    *out = m;
    return SW_OK;
}

void sw_monitor_set_budget(sw_monitor *m, sw_share_ctl *budget) {
    if (m) m->budget = budget;
}

void sw_monitor_free(sw_monitor *m) {
    if (!m) return;
    free(m->held);
    free(m);
}

static void running_stats(const sw_monitor *m, sw_monitor_stats *s) {
    memset(s, 0, sizeof *s);
    s->verdict = m->verdict;
    s->n_tokens = m->n;
    s->score = NAN;
    s->failed_check = "";
    if (m->n > 0) {
        s->mean_logprob = m->sum_logprob / m->n;
        s->mean_entropy = m->sum_entropy / m->n;
        s->low_share = (double)m->n_low / m->n;
    }
}

/* Compare the statistics with the thresholds; sets verdict and failed_check. */
static sw_monitor_verdict judge_stats(const sw_monitor_params *p, sw_monitor_stats *s) {
    s->failed_check = "";
    if (s->n_tokens < p->min_tokens || s->n_tokens == 0) {
        s->verdict = SW_MONITOR_PASS;
    } else if (!isnan(p->min_mean_logprob) && s->mean_logprob < p->min_mean_logprob) {
        s->failed_check = "mean_logprob";
    } else if (!isnan(p->max_low_share) && s->low_share > p->max_low_share) {
        s->failed_check = "low_share";
    } else if (!isnan(p->max_mean_entropy) && s->mean_entropy > p->max_mean_entropy) {
        s->failed_check = "mean_entropy";
    }
    s->verdict = s->failed_check[0] ? SW_MONITOR_ESCALATE : SW_MONITOR_PASS;
    return s->verdict;
}

/* Self-calibrating: the budget decides on the score (share.h). */
static sw_monitor_verdict judge_share(sw_share_ctl *budget, int32_t min_tokens,
                                      sw_monitor_stats *s) {
    s->failed_check = "";
    s->verdict = SW_MONITOR_PASS;
    if (s->n_tokens < min_tokens || s->n_tokens == 0 || !budget) return s->verdict;
    s->score = sw_monitor_score(s->mean_logprob);
    if (sw_share_ctl_decide(budget, s->score)) {
        s->failed_check = "cloud_share";
        s->verdict = SW_MONITOR_ESCALATE;
    }
    return s->verdict;
}

static void decide(sw_monitor *m) {
    running_stats(m, &m->decided);
    m->verdict = isnan(m->p.cloud_share) ? judge_stats(&m->p, &m->decided)
                                         : judge_share(m->budget, m->p.min_tokens, &m->decided);
}

static bool hold(sw_monitor *m, const char *text, size_t len) {
    if (!len) return true;
    if (m->held_len + len + 1 > m->held_cap) {
        size_t cap = m->held_cap ? m->held_cap : 256;
        while (cap < m->held_len + len + 1) cap *= 2;
        char *np = realloc(m->held, cap);
        if (!np) return false;
        m->held = np;
        m->held_cap = cap;
    }
    memcpy(m->held + m->held_len, text, len);
    m->held_len += len;
    m->held[m->held_len] = '\0';
    return true;
}

sw_monitor_verdict sw_monitor_feed(sw_monitor *m, float logprob, float entropy, const char *text,
                                   size_t text_len) {
    if (!m) return SW_MONITOR_PASS;
    if (m->verdict != SW_MONITOR_PROBING) return m->verdict;
    /* A -inf logprob (token the raw model gave p = 0, e.g. forced by a grammar)
     * would make the mean -inf; count it as very low instead. */
    double lp = isfinite(logprob) ? logprob : -100.0;
    double h = isfinite(entropy) && entropy >= 0 ? entropy : 0.0;
    m->n++;
    m->sum_logprob += lp;
    m->sum_entropy += h;
    if (lp < m->low_logprob) m->n_low++;
    if (text && text_len && !hold(m, text, text_len)) {
        /* Out of memory holding text: stop probing rather than lose output. */
        m->verdict = SW_MONITOR_PASS;
        running_stats(m, &m->decided);
        return m->verdict;
    }
    if (m->mode == SW_MONITOR_WINDOW && m->n >= m->p.probe_tokens) decide(m);
    return m->verdict;
}

sw_status sw_monitor_hold_text(sw_monitor *m, const char *text, size_t len, sw_err *err) {
    if (!m) return sw_err_set(err, SW_E_INVALID_ARG, "sw_monitor_hold_text: monitor is NULL");
    if (m->verdict != SW_MONITOR_PROBING) return SW_OK;
    if (!hold(m, text, len)) return sw_err_set(err, SW_E_NOMEM, "monitor: out of memory");
    return SW_OK;
}

sw_monitor_verdict sw_monitor_finish(sw_monitor *m) {
    if (!m) return SW_MONITOR_PASS;
    if (m->verdict == SW_MONITOR_PROBING) decide(m);
    return m->verdict;
}

sw_monitor_verdict sw_monitor_verdict_get(const sw_monitor *m) {
    return m ? m->verdict : SW_MONITOR_PASS;
}

const char *sw_monitor_held(const sw_monitor *m, size_t *len) {
    if (len) *len = m ? m->held_len : 0;
    return m && m->held ? m->held : "";
}

void sw_monitor_stats_get(const sw_monitor *m, sw_monitor_stats *out) {
    if (!m) {
        memset(out, 0, sizeof *out);
        out->verdict = SW_MONITOR_PASS;
        out->score = NAN;
        out->failed_check = "";
        return;
    }
    if (m->verdict == SW_MONITOR_PROBING) running_stats(m, out);
    else *out = m->decided;
}

char *sw_monitor_stats_json(const sw_monitor_stats *s) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "verdict", sw_monitor_verdict_str(s->verdict));
    cJSON_AddNumberToObject(o, "tokens", s->n_tokens);
    /* Rounded: metadata for humans and dashboards, not for recomputation. */
    cJSON_AddNumberToObject(o, "mean_logprob", round(s->mean_logprob * 1e4) / 1e4);
    cJSON_AddNumberToObject(o, "low_share", round(s->low_share * 1e4) / 1e4);
    cJSON_AddNumberToObject(o, "mean_entropy", round(s->mean_entropy * 1e4) / 1e4);
    if (isfinite(s->score)) cJSON_AddNumberToObject(o, "score", round(s->score * 1e4) / 1e4);
    if (s->failed_check && s->failed_check[0])
        cJSON_AddStringToObject(o, "failed_check", s->failed_check);
    char *out = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return out;
}

sw_monitor_verdict sw_monitor_judge(const sw_monitor_params *p, const float *logprobs,
                                    const float *entropies, size_t n, sw_monitor_stats *out) {
    sw_monitor_params d;
    if (!p) {
        sw_monitor_params_default(&d);
        p = &d;
    }
    sw_monitor_stats s;
    memset(&s, 0, sizeof s);
    s.score = NAN;
    s.failed_check = "";
    if (!p->enabled) {
        s.verdict = SW_MONITOR_PASS;
    } else {
        double low = log(p->low_prob > 0 ? (double)p->low_prob : 0.1);
        double sl = 0, se = 0;
        size_t nl = 0;
        for (size_t i = 0; i < n; i++) {
            double lp = isfinite(logprobs[i]) ? logprobs[i] : -100.0;
            double h = entropies && isfinite(entropies[i]) && entropies[i] >= 0 ? entropies[i] : 0;
            sl += lp;
            se += h;
            nl += lp < low;
        }
        s.n_tokens = (int32_t)n;
        if (n) {
            s.mean_logprob = sl / (double)n;
            s.mean_entropy = se / (double)n;
            s.low_share = (double)nl / (double)n;
        }
        judge_stats(p, &s);
    }
    if (out) *out = s;
    return s.verdict;
}

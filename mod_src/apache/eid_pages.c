/*
 * eid_pages.c - rendering the pages: language choice, templates (built-in or
 * the sysadmin's EidPageTemplate), placeholders, response headers.
 *
 * Templates are read and checked while the configuration is read (one
 * thread), kept in pconf and never written afterwards: request threads only
 * read them (docs/architecture.md, shared state).
 */
#include "mod_auth_eid.h"
#include "eid_pages.h"

#include "apr_file_io.h"
#include "apr_lib.h"
#include "apr_strings.h"
#include "http_core.h"
#include "http_protocol.h"
#include "http_request.h"
#include "mod_core.h"

#include "eid/eid_redirect.h"
#include "eid/eid_util.h"

#include <openssl/evp.h>

#define TEMPLATE_MAX (64 * 1024)   /* bytes of a sysadmin's template */
#define ACCEPT_LANG_MAX 1024       /* bytes of Accept-Language looked at */
#define ACCEPT_LANG_ITEMS 32       /* language ranges looked at */
#define MAX_PROVIDERS 16
#define MAX_FIELDS 8

static const char *const page_names[EID_PAGE__COUNT] = {
    "refused", "choose", "logged-out", "logout-confirm", "expired", "unavailable",
    "logout-continue"};
static const char *const lang_names[2] = {"sv", "en"};
static const char *const why_names[EID_WHY__COUNT] = {
    NULL, "no-credential", "invalid", "level", "not-allowed", "expired", "unavailable"};
/* Every placeholder a template may use. */
static const char *const known_vars[] = {"lang", "title", "why", "advice", "request_id",
                                         "status", "csrf", "action", "providers", "link",
                                         "end_session", "fields", NULL};

/* The sysadmin's templates: [page][lang], NULL = built-in.  Written only by
 * eid_set_page_template() while the configuration is read; reset in
 * pre_config (a new pconf each time). */
static const char *custom_tpl[EID_PAGE__COUNT][2];

static int pages_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    memset(custom_tpl, 0, sizeof(custom_tpl));
    return OK;
}

const char *eid_why_name(eid_why_e why)
{
    return (why > EID_WHY_NONE && why < EID_WHY__COUNT) ? why_names[why] : NULL;
}

static eid_why_e why_by_name(const char *n)
{
    int i;
    for (i = 1; n && i < EID_WHY__COUNT; i++)
        if (!strcmp(n, why_names[i]))
            return (eid_why_e)i;
    return EID_WHY_NONE;
}

/* ---- Accept-Language --------------------------------------------------------- */

/* q-value "1", "1.0", "0.8", "0" ... as thousandths; -1 if malformed. */
static int qvalue(const char *s, const char *e)
{
    int v = 0, scale = 1000;
    while (s < e && (*s == ' ' || *s == '\t'))
        s++;
    if (s == e || (*s != '0' && *s != '1'))
        return -1;
    v = (*s++ - '0') * 1000;
    if (s < e && *s == '.') {
        s++;
        while (s < e && apr_isdigit(*s) && scale > 1) {
            scale /= 10;
            v += (*s++ - '0') * scale;
        }
    }
    while (s < e && (*s == ' ' || *s == '\t'))
        s++;
    return (s == e && v <= 1000) ? v : -1;
}

/* 0 sv, 1 en.  Bounded: the first ACCEPT_LANG_MAX bytes, ACCEPT_LANG_ITEMS
 * ranges; the highest q wins, the first of equals; "*" means the default. */
static int pick_lang(request_rec *r)
{
    const char *h = apr_table_get(r->headers_in, "Accept-Language");
    const char *p, *end;
    int best = 0, best_q = -1, items = 0;
    if (!h)
        return 0;
    end = h + strnlen(h, ACCEPT_LANG_MAX);
    for (p = h; p < end && items < ACCEPT_LANG_ITEMS; items++) {
        const char *item_end = p, *semi = NULL, *tag_end;
        int lang = -1, q = 1000;
        apr_size_t tl;
        while (item_end < end && *item_end != ',')
            item_end++;
        while (p < item_end && (*p == ' ' || *p == '\t'))
            p++;
        for (tag_end = p; tag_end < item_end && !semi; tag_end++)
            if (*tag_end == ';')
                semi = tag_end;
        tag_end = semi ? semi : item_end;
        while (tag_end > p && (tag_end[-1] == ' ' || tag_end[-1] == '\t'))
            tag_end--;
        tl = (apr_size_t)(tag_end - p);
        if ((tl == 2 || (tl > 2 && p[2] == '-')) && !strncasecmp(p, "sv", 2))
            lang = 0;
        else if ((tl == 2 || (tl > 2 && p[2] == '-')) && !strncasecmp(p, "en", 2))
            lang = 1;
        else if (tl == 1 && *p == '*')
            lang = 0;
        if (semi) {
            const char *s = semi + 1;
            while (s < item_end && (*s == ' ' || *s == '\t'))
                s++;
            if (item_end - s >= 2 && (s[0] == 'q' || s[0] == 'Q') && s[1] == '=')
                q = qvalue(s + 2, item_end);
            else
                q = -1; /* other parameters: ignore the range */
        }
        if (lang >= 0 && q > 0 && q > best_q) {
            best = lang;
            best_q = q;
        }
        p = item_end + 1;
    }
    return best;
}

/* ---- templates ----------------------------------------------------------------- */

static int known_var(const char *n, apr_size_t len)
{
    int i;
    for (i = 0; known_vars[i]; i++)
        if (strlen(known_vars[i]) == len && !memcmp(known_vars[i], n, len))
            return 1;
    return 0;
}

/* NULL, or what is wrong with template text t (n bytes) and on which line. */
static const char *check_template(apr_pool_t *p, const char *t, apr_size_t n)
{
    apr_size_t i;
    int line = 1;
    if (memchr(t, '\0', n))
        return "holds a NUL byte";
    if (eid_utf8_check((const unsigned char *)t, n, 0) != EID_UTF8_OK)
        return "is not valid UTF-8";
    for (i = 0; i < n; i++) {
        if (t[i] == '\n')
            line++;
        if (t[i] == '{' && i + 1 < n && t[i + 1] == '{') {
            apr_size_t s = i + 2, e = s;
            while (e < n && e - s <= 32 && t[e] != '}' && t[e] != '\n')
                e++;
            if (e + 1 >= n || t[e] != '}' || t[e + 1] != '}')
                return apr_psprintf(p, "line %d: '{{' without a closing '}}'", line);
            if (!known_var(t + s, e - s))
                return apr_psprintf(p, "line %d: unknown placeholder {{%.*s}}", line,
                                    (int)(e - s), t + s);
            i = e + 1;
        }
    }
    return NULL;
}

const char *eid_set_page_template(cmd_parms *cmd, void *dcv, const char *page,
                                  const char *lang, const char *file)
{
    const char *path, *err;
    apr_file_t *f;
    apr_finfo_t fi;
    apr_size_t n;
    char *buf;
    int pg, lg;
    apr_status_t rv;

    if (cmd->server->is_virtual)
        return "EidPageTemplate: only in the main server configuration";
    for (pg = 0; pg < EID_PAGE__COUNT && strcmp(page, page_names[pg]); pg++)
        ;
    if (pg == EID_PAGE__COUNT)
        return apr_psprintf(cmd->pool, "EidPageTemplate: unknown page '%s' (refused, choose, "
                            "logged-out, logout-confirm, logout-continue, expired, "
                            "unavailable)", page);
    for (lg = 0; lg < 2 && strcmp(lang, lang_names[lg]); lg++)
        ;
    if (lg == 2)
        return apr_psprintf(cmd->pool, "EidPageTemplate: unknown language '%s' (sv, en)",
                            lang);
    if (custom_tpl[pg][lg])
        return apr_psprintf(cmd->pool, "EidPageTemplate: %s %s is set twice", page, lang);
    path = ap_server_root_relative(cmd->temp_pool, file);
    if (!path)
        return apr_psprintf(cmd->pool, "EidPageTemplate: bad path '%s'", file);
    if ((rv = apr_file_open(&f, path, APR_FOPEN_READ | APR_FOPEN_BINARY, 0, cmd->temp_pool)))
        return apr_psprintf(cmd->pool, "EidPageTemplate: cannot read %s: %pm", path, &rv);
    if ((rv = apr_file_info_get(&fi, APR_FINFO_SIZE | APR_FINFO_TYPE, f)) ||
        fi.filetype != APR_REG) {
        apr_file_close(f);
        return apr_psprintf(cmd->pool, "EidPageTemplate: %s is not a regular file", path);
    }
    if (fi.size > TEMPLATE_MAX || fi.size == 0) {
        apr_file_close(f);
        return apr_psprintf(cmd->pool, "EidPageTemplate: %s: size must be 1 to %d bytes",
                            path, TEMPLATE_MAX);
    }
    n = (apr_size_t)fi.size;
    buf = apr_palloc(cmd->pool, n + 1);
    rv = apr_file_read_full(f, buf, n, &n);
    apr_file_close(f);
    if (rv != APR_SUCCESS)
        return apr_psprintf(cmd->pool, "EidPageTemplate: cannot read %s: %pm", path, &rv);
    buf[n] = '\0';
    if ((err = check_template(cmd->temp_pool, buf, n)))
        return apr_psprintf(cmd->pool, "%s: EidPageTemplate: %s: %s", "EID08401", path, err);
    custom_tpl[pg][lg] = buf; /* pconf: immutable from here on */
    return NULL;
}

/* ---- rendering ------------------------------------------------------------------ */

/* & < > " ' as entities; UTF-8 kept as it is (the page is UTF-8).  Why our
 * own: ap_escape_html2 leaves ' alone, and a sysadmin's template may quote an
 * attribute with it. */
static const char *esc(apr_pool_t *p, const char *s)
{
    apr_size_t n = 0;
    const char *q;
    char *out, *o;
    for (q = s; *q; q++)
        n += (*q == '&') ? 5 : (*q == '<' || *q == '>') ? 4 : (*q == '"' || *q == '\'') ? 6 : 1;
    o = out = apr_palloc(p, n + 1);
    for (q = s; *q; q++) {
        const char *e = *q == '&' ? "&amp;" : *q == '<' ? "&lt;" : *q == '>' ? "&gt;"
                      : *q == '"' ? "&quot;" : *q == '\'' ? "&#39;" : NULL;
        if (e) {
            memcpy(o, e, strlen(e));
            o += strlen(e);
        } else
            *o++ = *q;
    }
    *o = '\0';
    return out;
}

typedef struct {
    const char *val[sizeof(known_vars) / sizeof(*known_vars)];
    int raw_providers; /* {{providers}} is pre-built, escaped HTML */
} render_vars_t;

static const char *providers_html(request_rec *r, apr_table_t *vars)
{
    const char *out = "<ul>\n";
    int i, n = 0;
    for (i = 0; vars && i < MAX_PROVIDERS; i++) {
        const char *name = apr_table_get(vars, apr_psprintf(r->pool, "provider.%d.name", i));
        const char *url = apr_table_get(vars, apr_psprintf(r->pool, "provider.%d.url", i));
        if (!name || !url)
            break;
        /* Why checked here too: a link the page shows is followed by the
         * browser; only local paths are ever linked. */
        if (eid_redirect_check(url, strlen(url), NULL, 0))
            continue;
        out = apr_pstrcat(r->pool, out, "<li><a href=\"", esc(r->pool, url),
                          "\">", esc(r->pool, name), "</a></li>\n", NULL);
        n++;
    }
    return n ? apr_pstrcat(r->pool, out, "</ul>", NULL) : "";
}

/* {{fields}}: hidden inputs from vars "field.N.name" / "field.N.value"
 * (N = 0, 1, ...), escaped here. */
static const char *fields_html(request_rec *r, apr_table_t *vars)
{
    const char *out = "";
    int i;
    for (i = 0; vars && i < MAX_FIELDS; i++) {
        const char *name = apr_table_get(vars, apr_psprintf(r->pool, "field.%d.name", i));
        const char *val = apr_table_get(vars, apr_psprintf(r->pool, "field.%d.value", i));
        if (!name || !val)
            break;
        out = apr_pstrcat(r->pool, out, "<input type=\"hidden\" name=\"", esc(r->pool, name),
                          "\" value=\"", esc(r->pool, val), "\">\n", NULL);
    }
    return out;
}

/* CSP source of the one script a page may run (the logout-continue page's
 * form submission, EID_PAGE_SUBMIT_SCRIPT): its SHA-256, so no other inline
 * script - an injected one, a sysadmin template's own - ever runs. */
static const char *script_src(apr_pool_t *p)
{
    unsigned char md[32], b64[48];
    unsigned int n = 0;
    EVP_Digest(EID_PAGE_SUBMIT_SCRIPT, strlen(EID_PAGE_SUBMIT_SCRIPT), md, &n, EVP_sha256(),
               NULL);
    EVP_EncodeBlock(b64, md, (int)n);
    return apr_pstrcat(p, "; script-src 'sha256-", (const char *)b64, "'", NULL);
}

static const char *render(request_rec *r, const char *t, const char *const *val)
{
    apr_array_header_t *parts = apr_array_make(r->pool, 32, sizeof(const char *));
    const char *p = t, *o;
    while ((o = strstr(p, "{{")) != NULL) {
        const char *e = strstr(o + 2, "}}");
        int i;
        if (!e)
            break;
        APR_ARRAY_PUSH(parts, const char *) = apr_pstrmemdup(r->pool, p, (apr_size_t)(o - p));
        for (i = 0; known_vars[i]; i++)
            if (strlen(known_vars[i]) == (apr_size_t)(e - o - 2) &&
                !memcmp(known_vars[i], o + 2, (apr_size_t)(e - o - 2)))
                break;
        if (known_vars[i] && val[i])
            APR_ARRAY_PUSH(parts, const char *) =
                (!strcmp(known_vars[i], "providers") || !strcmp(known_vars[i], "fields"))
                    ? val[i]
                    : esc(r->pool, val[i]);
        p = e + 2;
    }
    APR_ARRAY_PUSH(parts, const char *) = p;
    return apr_array_pstrcat(r->pool, parts, 0);
}

static int var_index(const char *n)
{
    int i;
    for (i = 0; known_vars[i]; i++)
        if (!strcmp(known_vars[i], n))
            return i;
    return -1;
}

/* Origins a page's form may lead to besides our own (vars "form_action":
 * space-separated origins, each checked): browsers apply CSP form-action to
 * every redirect after the submission, so the logout form needs the
 * provider's end-session origin.  A word that is not a plain origin is left
 * out (never copied into the header). */
static const char *form_action_extra(request_rec *r, apr_table_t *vars)
{
    const char *list = vars ? apr_table_get(vars, "form_action") : NULL, *w;
    const char *out = "";
    char *copy, *state;

    if (!list)
        return "";
    copy = apr_pstrdup(r->pool, list);
    for (w = apr_strtok(copy, " ", &state); w; w = apr_strtok(NULL, " ", &state))
        if (!eid_redirect_origin_check(w))
            out = apr_pstrcat(r->pool, out, " ", w, NULL);
    return out;
}

int eid_page_send(request_rec *r, eid_page_e page, int status, apr_table_t *vars)
{
    const char *val[sizeof(known_vars) / sizeof(*known_vars)] = {0};
    const eid_page_text_t *tx;
    const char *tpl, *body, *v;
    int lang = pick_lang(r);
    eid_why_e why;

    if (page < 0 || page >= EID_PAGE__COUNT)
        page = EID_PAGE_REFUSED;
    why = why_by_name(vars ? apr_table_get(vars, "why") : NULL);
    if (page == EID_PAGE_EXPIRED)
        why = EID_WHY_EXPIRED;
    else if (page == EID_PAGE_UNAVAILABLE)
        why = EID_WHY_UNAVAILABLE;
    tx = (page == EID_PAGE_REFUSED || page == EID_PAGE_EXPIRED || page == EID_PAGE_UNAVAILABLE)
             ? &eid_why_text[why][lang]
             : &eid_page_text[page][lang];
    val[var_index("lang")] = lang_names[lang];
    val[var_index("title")] = tx->title;
    val[var_index("why")] = tx->why;
    val[var_index("advice")] = tx->advice;
    if (why == EID_WHY_LEVEL && vars && (v = apr_table_get(vars, "loa")) && v[0] >= '1' &&
        v[0] <= '4' && !v[1])
        val[var_index("why")] = apr_psprintf(r->pool, eid_level_fmt[lang], v[0] - '0');
    v = vars ? apr_table_get(vars, "request_id") : NULL;
    val[var_index("request_id")] = v ? v : eid_request_id(r);
    if (!status)
        status = HTTP_OK;
    val[var_index("status")] = apr_itoa(r->pool, status);
    val[var_index("csrf")] = vars ? apr_table_get(vars, "csrf") : NULL;
    val[var_index("action")] = apr_pstrcat(r->pool, eid_endpoint_path(r), "/logout", NULL);
    v = vars ? apr_table_get(vars, "link") : NULL;
    val[var_index("link")] = (v && !eid_redirect_check(v, strlen(v), NULL, 0)) ? v : "/";
    val[var_index("providers")] = providers_html(r, vars);
    val[var_index("fields")] = fields_html(r, vars);
    val[var_index("end_session")] = vars ? apr_table_get(vars, "end_session") : NULL;

    tpl = custom_tpl[page][lang] ? custom_tpl[page][lang] : eid_page_builtin[page][lang];
    body = render(r, tpl, val);

    r->status = status;
    ap_set_content_type(r, "text/html; charset=utf-8");
    apr_table_setn(r->headers_out, "Content-Language", lang_names[lang]);
    apr_table_mergen(r->headers_out, "Vary", "Accept-Language");
    /* One Cache-Control: a caller (the callback) may have set it for its
     * error answers already; both tables are sent ("no-store, no-store"). */
    apr_table_unset(r->err_headers_out, "Cache-Control");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    apr_table_setn(r->headers_out, "X-Content-Type-Options", "nosniff");
    apr_table_setn(r->headers_out, "X-Frame-Options", "DENY");
    apr_table_setn(r->headers_out, "Referrer-Policy", "no-referrer");
    apr_table_setn(r->headers_out, "Content-Security-Policy",
                   apr_pstrcat(r->pool, "default-src 'none'; style-src 'unsafe-inline'; "
                               "img-src 'self'; form-action 'self'",
                               form_action_extra(r, vars), "; frame-ancestors 'none'; "
                               "base-uri 'none'",
                               page == EID_PAGE_LOGOUT_CONTINUE ? script_src(r->pool) : "",
                               NULL));
    ap_set_content_length(r, (apr_off_t)strlen(body));
    if (!r->header_only)
        ap_rwrite(body, (int)strlen(body), r);
    return OK;
}

/* ---- refusals -------------------------------------------------------------------- */

int eid_page_is_browser(request_rec *r)
{
    const char *accept;
    if (r->method_number != M_GET)  /* HEAD is M_GET with header_only */
        return 0;
    if (apr_table_get(r->headers_in, "Authorization") ||
        apr_table_get(r->headers_in, "X-Requested-With"))
        return 0;
    accept = apr_table_get(r->headers_in, "Accept");
    return accept && ap_strcasestr(accept, "text/html") != NULL;
}

void eid_page_arrange_refusal(request_rec *r, int status)
{
    int idx;
    if (r->main || !ap_is_HTTP_ERROR(status) || !eid_page_is_browser(r))
        return;
    idx = ap_index_of_response(status);
    /* The sysadmin's ErrorDocument for this status wins (also one set by
     * another module for this request). */
    if (ap_response_code_string(r, idx))
        return;
    ap_custom_response(r, status, apr_pstrcat(r->pool, eid_endpoint_path(r), "/page/refused",
                                              NULL));
}

void eid_pages_register_hooks(apr_pool_t *p)
{
    ap_hook_pre_config(pages_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
}

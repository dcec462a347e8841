/*
 * eid_scope.c - what a location may accept, checked at start-up.
 *
 * The rule: trust profiles, token providers and organisation directories
 * (EidUseDirectory) are defined at server level
 * and named by virtual hosts and locations; a location uses exactly what it
 * names (or what its virtual host names).  When it names nothing, the only
 * object of that kind is its default; with several, nothing is guessed.
 *
 * The per-directory configurations of httpd are merged only per request, so
 * this check reads the parsed configuration tree (ap_conftree), which still
 * knows every directive's file and line: a location that turns the module on
 * (AuthType eid / EidMethods) with nothing named in reach, and a list that
 * names two providers for one issuer, are refused at `apachectl -t`.  What
 * the tree cannot show (.htaccess files; sections whose merge depends on the
 * request) is refused per request by the methods (EID01020, EID01520).
 *
 * "In reach" is judged generously, so that a working configuration is never
 * refused: the section itself, the sections around it, its virtual host's and
 * the main server's top level, and any other section that might merge with it
 * (any regex, <If> or nested section; a <Directory> for a <Location> and vice
 * versa; the same kind of section at a prefix of its path).  A section of the
 * main server is merged into every virtual host, so what a virtual host names
 * counts for it; a virtual host's sections never count for another's.
 */
#include "mod_auth_eid.h"
#include "eid_bearer_glue.h"
#include "eid_login_glue.h"

#include "ap_listen.h"
#include "apr_strings.h"
#include "apr_uri.h"
#include "http_config.h"
#include "http_main.h"
#include "util_cfgtree.h"

#include "eid/eid_bearer.h"

typedef enum { SEC_TOP, SEC_LOC, SEC_DIR, SEC_OTHER } sec_kind_e;

typedef struct sec sec_t;
struct sec {
    sec_kind_e kind;
    int regex;
    const char *path;
    const sec_t *parent; /* enclosing section; NULL for a scope's top level */
    const sec_t *top;    /* the top level of this section's scope */
    const sec_t *main;   /* the main server's top level (NULL for it itself) */
    /* directives directly in this section */
    const ap_directive_t *authtype_eid;
    const ap_directive_t *methods;
    int names_profiles, names_providers, names_directory, names_login;
    int redirect_uri; /* EidRedirectURI at this (top) level */
    const ap_directive_t *vhost; /* a virtual host's top level: its <VirtualHost> */
};

typedef struct {
    apr_pool_t *p;
    apr_array_header_t *secs; /* sec_t *, every section of every scope */
    const char *err;          /* first error: "Syntax error on line ..." */
} walk_t;

static const char *first_word(apr_pool_t *p, const char *args)
{
    char *a = apr_pstrdup(p, args ? args : ""), *end = strrchr(a, '>');
    const char *line = a, *w;
    if (end && end[1] == '\0')
        *end = '\0'; /* a container's arguments end with its '>' */
    w = ap_getword_conf(p, &line);
    return w ? w : "";
}

static void fail(walk_t *w, const ap_directive_t *d, const char *msg)
{
    if (!w->err)
        w->err = apr_psprintf(w->p, "Syntax error on line %d of %s: %s %s: %s", d->line_num,
                              d->filename, d->directive, d->args ? d->args : "", msg);
}

static sec_t *new_sec(walk_t *w, const ap_directive_t *d, const sec_t *parent,
                      const sec_t *top, const sec_t *main_top)
{
    sec_t *s = apr_pcalloc(w->p, sizeof(*s));
    s->parent = parent;
    s->top = top ? top : s;
    s->main = main_top;
    s->kind = SEC_TOP;
    if (d) {
        const char *name = d->directive + 1;
        size_t n = strlen(name);
        s->path = first_word(w->p, d->args);
        s->regex = !strcmp(s->path, "~") || (n > 5 && !strcasecmp(name + n - 5, "Match"));
        if (!strncasecmp(name, "Location", 8))
            s->kind = SEC_LOC;
        else if (!strncasecmp(name, "Directory", 9))
            s->kind = SEC_DIR;
        else
            s->kind = SEC_OTHER;
    }
    APR_ARRAY_PUSH(w->secs, sec_t *) = s;
    return s;
}

/* Two providers named by one list must not share an issuer: the first to
 * accept a token would decide which claim rules (and identity checks) apply. */
static void check_provider_list(walk_t *w, const ap_directive_t *d)
{
    const char *args = d->args;
    apr_array_header_t *seen = apr_array_make(w->p, 4, sizeof(eid_provider_t *));
    char *name;
    int i;

    while (*args && (name = ap_getword_conf(w->p, &args)) && *name) {
        eid_provider_t *pv = apr_hash_get(eid_g->providers, name, APR_HASH_KEY_STRING);
        const char *iss = pv ? eid_provider_issuer(pv) : NULL;
        for (i = 0; iss && i < seen->nelts; i++) {
            eid_provider_t *o = APR_ARRAY_IDX(seen, i, eid_provider_t *);
            const char *oiss = eid_provider_issuer(o);
            if (oiss && !strcmp(iss, oiss))
                fail(w, d, apr_psprintf(w->p, "providers '%s' and '%s' have the same "
                                        "issuer %s: name one provider per issuer",
                                        eid_provider_name(o), name, iss));
        }
        if (pv)
            APR_ARRAY_PUSH(seen, eid_provider_t *) = pv;
    }
}

/* Every provider an EidLoginProviders line names must log users in (known
 * only now, once the providers are checked). */
static void check_login_list(walk_t *w, const ap_directive_t *d)
{
    const char *args = d->args;
    char *name;
    while (*args && (name = ap_getword_conf(w->p, &args)) && *name) {
        eid_provider_t *pv = apr_hash_get(eid_g->providers, name, APR_HASH_KEY_STRING);
        if (pv && !eid_login_enabled(pv))
            fail(w, d, apr_psprintf(w->p, "provider '%s' has no login=on", name));
    }
}

static void collect(walk_t *w, const ap_directive_t *d, sec_t *cur, const sec_t *main_top)
{
    for (; d; d = d->next) {
        if (d->directive[0] == '<') {
            if (!strcasecmp(d->directive, "<VirtualHost")) {
                sec_t *vtop = new_sec(w, NULL, NULL, NULL, main_top);
                vtop->vhost = d;
                collect(w, d->first_child, vtop, main_top);
            }
            else {
                sec_t *s = new_sec(w, d, cur, cur->top, main_top);
                collect(w, d->first_child, s, main_top);
            }
        }
        else if (!strcasecmp(d->directive, "AuthType")) {
            if (!strcasecmp(first_word(w->p, d->args), EID_AUTH_TYPE))
                cur->authtype_eid = d;
        }
        else if (!strcasecmp(d->directive, "EidMethods")) {
            cur->methods = d;
        }
        else if (!strcasecmp(d->directive, "EidCertProfiles")) {
            cur->names_profiles = 1;
        }
        else if (!strcasecmp(d->directive, "EidBearerProviders")) {
            cur->names_providers = 1;
            check_provider_list(w, d);
        }
        else if (!strcasecmp(d->directive, "EidUseDirectory")) {
            cur->names_directory = 1;
        }
        else if (!strcasecmp(d->directive, "EidLoginProviders")) {
            cur->names_login = 1;
            check_login_list(w, d);
        }
        else if (!strcasecmp(d->directive, "EidRedirectURI")) {
            cur->redirect_uri = 1;
        }
    }
}

static const sec_t *outermost(const sec_t *s)
{
    while (s->parent && s->parent->kind != SEC_TOP)
        s = s->parent;
    return s;
}

/* Whether the settings of `t` might be merged into a request that `x` serves. */
static int may_merge(const sec_t *t, const sec_t *x)
{
    const sec_t *to, *xo;
    int x_in_main = !x->main || x->main == x->top;
    /* A section of the main server is merged into every virtual host too; a
     * virtual host's section applies to that virtual host only. */
    if (t->top != x->top && t->top != x->main && !x_in_main)
        return 0;
    if (x->kind == SEC_TOP || t->kind == SEC_TOP)
        return 1;
    to = outermost(t);
    xo = outermost(x);
    if (to->regex || xo->regex || to->kind != xo->kind || to->kind == SEC_OTHER)
        return 1;
    return !strncmp(to->path, xo->path, strlen(to->path));
}

static int in_chain(const sec_t *t, const sec_t *x)
{
    const sec_t *c;
    for (c = x; c; c = c->parent)
        if (c == t)
            return 1;
    return t == x->top || t == x->main;
}

/* The nearest setting along x, its enclosing sections, its scope's top level
 * and the main server's: the first of them that has it. */
#define CHAIN_FIND(x, field, out)                                        \
    do {                                                                 \
        const sec_t *c_;                                                 \
        (out) = NULL;                                                    \
        for (c_ = (x); c_ && !(out); c_ = c_->parent)                    \
            if (c_->field)                                               \
                (out) = c_;                                              \
        if (!(out) && (x)->top != (x) && (x)->top->field)                \
            (out) = (x)->top;                                            \
        if (!(out) && (x)->main && (x)->main->field)                     \
            (out) = (x)->main;                                           \
    } while (0)

/* what: 0 trust profiles, 1 token providers, 2 a directory, 3 login providers */
static int named_in_reach(walk_t *w, const sec_t *x, int what)
{
    int i;
    for (i = 0; i < w->secs->nelts; i++) {
        const sec_t *t = APR_ARRAY_IDX(w->secs, i, const sec_t *);
        int names = what == 0 ? t->names_profiles
                  : what == 1 ? t->names_providers
                  : what == 2 ? t->names_directory : t->names_login;
        if (!names)
            continue;
        if (in_chain(t, x) || may_merge(t, x))
            return 1;
    }
    return 0;
}

static int methods_elsewhere(walk_t *w, const sec_t *x)
{
    int i;
    for (i = 0; i < w->secs->nelts; i++) {
        const sec_t *t = APR_ARRAY_IDX(w->secs, i, const sec_t *);
        if (t->methods && !in_chain(t, x) && may_merge(t, x))
            return 1;
    }
    return 0;
}

/* The virtual host `x` is in must serve its own callback: a login's state
 * cookie (and the session made at the callback) is sealed to the virtual
 * host that started it (eid_session_vhost), so a callback that another
 * server of this httpd answers never finds it - every login there would end
 * on the "expired" page.  Judged by port only, and only when that port is one
 * this httpd listens on and the virtual host does not: a callback URL on a
 * port of a proxy in front (TLS offload) is not refused. */
static void check_callback_port(walk_t *w, const sec_t *x, const ap_directive_t *where)
{
    const ap_directive_t *vd = x->top->vhost;
    server_rec *v, *m = ap_server_conf;
    const server_addr_rec *a;
    const ap_listen_rec *lr;
    const char *ru;
    apr_uri_t u;
    apr_port_t port;
    int local = 0;

    if (!vd || !m)
        return;
    for (v = m->next; v; v = v->next)
        if (v->defn_line_number == (unsigned)vd->line_num && v->defn_name &&
            !strcmp(v->defn_name, vd->filename))
            break;
    if (!v)
        return;
    ru = x->top->redirect_uri ? eid_login_srv(v)->redirect_uri : eid_login_srv(m)->redirect_uri;
    if (!ru || apr_uri_parse(w->p, ru, &u) != APR_SUCCESS || !u.scheme)
        return;
    port = u.port ? u.port : apr_uri_port_of_scheme(u.scheme);
    for (a = v->addrs; a; a = a->next)
        if (a->host_port == 0 || a->host_port == port)
            return;
    for (lr = ap_listeners; lr; lr = lr->next)
        local |= lr->bind_addr && lr->bind_addr->port == port;
    if (local)
        fail(w, where, apr_psprintf(w->p, "this location accepts oidc, but the callback of "
                                    "its virtual host (EidRedirectURI %s%s) is on port %u, "
                                    "which another server of this httpd answers: every "
                                    "login here would fail; set this virtual host's own "
                                    "EidRedirectURI", ru, x->top->redirect_uri ? "" :
                                    ", from the main server", (unsigned)port));
}

/* A location that accepts oidc (a session, and a login for browsers) needs
 * the session keys, a login provider it can name, and its virtual host's
 * callback URL: without them every browser would get a 500. */
static void check_oidc(walk_t *w, const sec_t *x, const ap_directive_t *where, int nlogin)
{
    eid_login_g->used = 1;
    if (!eid_login_g->key_file)
        fail(w, where, "this location accepts oidc (login sessions) but no "
                       "EidSessionKeyFile is set (main server)");
    else if (nlogin == 0)
        fail(w, where, "this location accepts oidc but no EidProvider has login=on");
    else if (nlogin > 1 && !named_in_reach(w, x, 3))
        fail(w, where, apr_psprintf(w->p, "this location accepts oidc but names no login "
                                    "provider, and %d are defined: name the ones it offers "
                                    "with EidLoginProviders here or in its virtual host",
                                    nlogin));
    else if (!x->top->redirect_uri && !(x->main && x->main->redirect_uri))
        fail(w, where, "this location accepts oidc but its virtual host has no "
                       "EidRedirectURI (https://host/.eid/callback)");
    else
        check_callback_port(w, x, where);
}

static void check_section(walk_t *w, const sec_t *x, int nprofiles, int nproviders,
                          int ndirs, int nlogin)
{
    const sec_t *at, *ms;
    const ap_directive_t *where;
    int cert = 1, bearer = 0, oidc = 0;

    if (!x->authtype_eid && !x->methods)
        return;
    CHAIN_FIND(x, authtype_eid, at);
    if (!at)
        return; /* AuthType eid comes from elsewhere, if at all: see the methods */
    CHAIN_FIND(x, methods, ms);
    if (ms) {
        const char *args = ms->methods->args;
        char *m;
        cert = 0;
        while (*args && (m = ap_getword_conf(w->p, &args)) && *m) {
            cert |= eid_method_parse(m) == EID_METHOD_CERT;
            bearer |= eid_method_parse(m) == EID_METHOD_BEARER;
            oidc |= eid_method_parse(m) == EID_METHOD_OIDC;
        }
    }
    else if (methods_elsewhere(w, x)) {
        return; /* the methods depend on the request */
    }
    where = x->methods ? x->methods : x->authtype_eid;
    if (cert && nprofiles > 1 && !named_in_reach(w, x, 0))
        fail(w, where, apr_psprintf(w->p, "this location accepts client certificates but "
                                    "names no trust profile, and %d are defined: name the "
                                    "ones it accepts with EidCertProfiles here or in its "
                                    "virtual host", nprofiles));
    if (bearer && nproviders > 1 && !named_in_reach(w, x, 1))
        fail(w, where, apr_psprintf(w->p, "this location accepts bearer tokens but names "
                                    "no token provider, and %d are defined: name the ones "
                                    "it accepts with EidBearerProviders here or in its "
                                    "virtual host", nproviders));
    if (oidc)
        check_oidc(w, x, where, nlogin);
    if (ndirs > 1 && !named_in_reach(w, x, 2))
        fail(w, where, apr_psprintf(w->p, "this location authenticates identities but names "
                                    "no organisation directory, and %d are defined: name "
                                    "the one it uses (or none) with EidUseDirectory here "
                                    "or in its virtual host", ndirs));
}

const char *eid_scope_check(apr_pool_t *ptemp)
{
    walk_t w;
    sec_t *main_top;
    int i, nprofiles = eid_all_profiles()->nelts;
    int nproviders = eid_g->all_providers->nelts;
    int ndirs = eid_g->directory_order->nelts;
    int nlogin = 0;

    for (i = 0; i < nproviders; i++)
        nlogin += eid_login_enabled(APR_ARRAY_IDX(eid_g->all_providers, i, eid_provider_t *));
    w.p = ptemp;
    w.err = NULL;
    w.secs = apr_array_make(ptemp, 16, sizeof(sec_t *));
    main_top = new_sec(&w, NULL, NULL, NULL, NULL);
    collect(&w, ap_conftree, main_top, main_top);
    for (i = 0; i < w.secs->nelts && !w.err; i++)
        check_section(&w, APR_ARRAY_IDX(w.secs, i, const sec_t *), nprofiles, nproviders,
                      ndirs, nlogin);
    return w.err;
}

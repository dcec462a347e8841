/*
 * eid_ep_stubs.c - placeholders for the login endpoints until the login glue
 * (eid_login_glue.c, eid_session_glue.c) is merged; that change deletes this
 * file.  Each answers 404: no login is configured.
 */
#include "mod_auth_eid.h"

int eid_ep_login(request_rec *r)
{
    return HTTP_NOT_FOUND;
}

int eid_ep_callback(request_rec *r)
{
    return HTTP_NOT_FOUND;
}

int eid_ep_logout(request_rec *r)
{
    return HTTP_NOT_FOUND;
}

int eid_ep_backchannel(request_rec *r)
{
    return HTTP_NOT_FOUND;
}

int eid_ep_choose(request_rec *r)
{
    return HTTP_NOT_FOUND;
}

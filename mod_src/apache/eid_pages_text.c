/*
 * eid_pages_text.c - the built-in pages in Swedish and English.
 *
 * Plain, accessible HTML: a lang attribute, a title, one heading, what
 * happened in everyday words, what the user can do, and the reference to
 * quote to support.  Nothing here names a tag, a certificate field, a token
 * or a reason from the code: the texts are chosen by eid_why_e only.
 * These are also the reference for sysadmins writing their own templates
 * (docs/pages.md lists the placeholders).
 */
#include "eid_pages.h"

#define STYLE                                                                              \
    "<style>body{font-family:system-ui,sans-serif;max-width:40em;margin:2em auto;"         \
    "padding:0 1em;line-height:1.5;color:#1a1a1a}h1{font-size:1.6em}"                      \
    ".ref{margin-top:2em;padding:.8em;border:1px solid #999;background:#f4f4f4}"           \
    "button,.btn{font-size:1em;padding:.5em 1.2em}</style>"

#define HEAD                                                                               \
    "<!DOCTYPE html>\n<html lang=\"{{lang}}\">\n<head>\n<meta charset=\"utf-8\">\n"        \
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"           \
    "<title>{{title}}</title>\n" STYLE "\n</head>\n<body>\n<main>\n<h1>{{title}}</h1>\n"   \
    "<p>{{why}}</p>\n<p>{{advice}}</p>\n"
#define FOOT "</main>\n</body>\n</html>\n"
#define REF(label, hint)                                                                   \
    "<p class=\"ref\">" label " <strong>{{request_id}}</strong><br>" hint "</p>\n"
#define REF_SV REF("Referens:", "Uppge referensen om du kontaktar supporten.")
#define REF_EN REF("Reference:", "Quote this reference if you contact support.")

/* POSTed to the provider's end-session endpoint at once by the one script the
 * page's CSP allows; without scripts, by the button. */
#define CONTINUE_FORM(button)                                                              \
    "<form id=\"eid-continue\" method=\"post\" action=\"{{end_session}}\">\n{{fields}}"     \
    "<button type=\"submit\">" button "</button>\n</form>\n<script>" EID_PAGE_SUBMIT_SCRIPT  \
    "</script>\n"

const char *const eid_page_builtin[EID_PAGE__COUNT][2] = {
    [EID_PAGE_REFUSED] = {HEAD REF_SV FOOT, HEAD REF_EN FOOT},
    [EID_PAGE_CHOOSE] = {HEAD "{{providers}}\n" FOOT, HEAD "{{providers}}\n" FOOT},
    [EID_PAGE_LOGGED_OUT] = {HEAD "<p><a href=\"{{link}}\">Logga in igen</a></p>\n" FOOT,
                             HEAD "<p><a href=\"{{link}}\">Log in again</a></p>\n" FOOT},
    [EID_PAGE_LOGOUT_CONFIRM] =
        {HEAD "<form method=\"post\" action=\"{{action}}\">\n"
              "<input type=\"hidden\" name=\"csrf\" value=\"{{csrf}}\">\n"
              "<button type=\"submit\">Logga ut</button>\n</form>\n"
              "<p><a href=\"{{link}}\">Tillbaka</a></p>\n" FOOT,
         HEAD "<form method=\"post\" action=\"{{action}}\">\n"
              "<input type=\"hidden\" name=\"csrf\" value=\"{{csrf}}\">\n"
              "<button type=\"submit\">Log out</button>\n</form>\n"
              "<p><a href=\"{{link}}\">Back</a></p>\n" FOOT},
    [EID_PAGE_EXPIRED] = {HEAD "<p><a href=\"{{link}}\">Logga in igen</a></p>\n" REF_SV FOOT,
                          HEAD "<p><a href=\"{{link}}\">Log in again</a></p>\n" REF_EN FOOT},
    [EID_PAGE_UNAVAILABLE] = {HEAD REF_SV FOOT, HEAD REF_EN FOOT},
    [EID_PAGE_LOGOUT_CONTINUE] =
        {HEAD CONTINUE_FORM("Fortsätt") FOOT, HEAD CONTINUE_FORM("Continue") FOOT},
};

const eid_page_text_t eid_why_text[EID_WHY__COUNT][2] = {
    [EID_WHY_NONE] =
        {{"Åtkomst nekad", "Du kan inte öppna den här sidan.",
          "Kontakta supporten om du tror att det är fel, och uppge referensen nedan."},
         {"Access denied", "You cannot open this page.",
          "Contact support if you think this is wrong, and quote the reference below."}},
    [EID_WHY_NO_CREDENTIAL] =
        {{"Du behöver identifiera dig",
          "Vi hittade inget SITHS-kort och ingen inloggning. Tjänsten kräver att du "
          "identifierar dig.",
          "Sätt i ditt SITHS-kort i kortläsaren, eller logga in med din e-legitimation, och "
          "försök igen. Hjälper inte det: stäng webbläsaren helt och öppna sidan på nytt."},
         {"You need to identify yourself",
          "We found no SITHS card and no login. This service needs to know who you are.",
          "Insert your SITHS card in the card reader, or log in with your e-ID, and try "
          "again. If that does not help, close the browser completely and open the page "
          "again."}},
    [EID_WHY_INVALID] =
        {{"Ditt kort eller din inloggning godtogs inte",
          "Vi kunde inte godta ditt kort eller din inloggning, till exempel för att kortet "
          "har gått ut, är spärrat eller inte är utfärdat för den här tjänsten.",
          "Försök igen med ett giltigt kort. Går det fortfarande inte, kontakta supporten "
          "och uppge referensen nedan."},
         {"Your card or login was not accepted",
          "We could not accept your card or login, for example because the card has "
          "expired, has been revoked or is not issued for this service.",
          "Try again with a valid card. If it still does not work, contact support and "
          "quote the reference below."}},
    [EID_WHY_LEVEL] =
        {{"Högre säkerhetsnivå krävs",
          "Den här sidan kräver en säkrare inloggning än den du har använt.",
          "Logga in med ditt SITHS-kort eller en e-legitimation med högre säkerhetsnivå och "
          "försök igen."},
         {"A higher security level is needed",
          "This page needs a more secure login than the one you used.",
          "Log in with your SITHS card or an e-ID with a higher security level and try "
          "again."}},
    [EID_WHY_NOT_ALLOWED] =
        {{"Du har inte behörighet till sidan",
          "Du är identifierad, men din organisation eller din roll har inte tillgång till "
          "den här sidan.",
          "Behöver du tillgång, tala med din chef eller kontakta supporten och uppge "
          "referensen nedan."},
         {"You do not have access to this page",
          "You are identified, but your organisation or your role does not have access "
          "to this page.",
          "If you need access, talk to your manager or contact support and quote the "
          "reference below."}},
    [EID_WHY_EXPIRED] =
        {{"Du har loggats ut",
          "Din inloggning har gått ut, till exempel för att du inte har använt tjänsten på "
          "en stund.",
          "Logga in igen för att fortsätta."},
         {"You have been logged out",
          "Your login has expired, for example because you have not used the service for "
          "a while.",
          "Log in again to continue."}},
    [EID_WHY_UNAVAILABLE] =
        {{"Tjänsten är tillfälligt otillgänglig",
          "Vi kan inte kontrollera din inloggning just nu på grund av ett tekniskt fel hos "
          "oss. Det är inte ditt fel.",
          "Vänta några minuter och försök igen. Kvarstår felet, kontakta supporten och "
          "uppge referensen nedan."},
         {"The service is temporarily unavailable",
          "We cannot check your login right now because of a technical fault on our side. "
          "It is not your fault.",
          "Wait a few minutes and try again. If the fault remains, contact support and "
          "quote the reference below."}},
};

const eid_page_text_t eid_page_text[EID_PAGE__COUNT][2] = {
    [EID_PAGE_CHOOSE] = {{"Välj hur du vill logga in", "Tjänsten kan ta emot flera sorters "
                          "inloggning.", "Välj den som gäller för dig:"},
                         {"Choose how to log in", "This service accepts more than one kind "
                          "of login.", "Choose the one that applies to you:"}},
    [EID_PAGE_LOGGED_OUT] = {{"Du är utloggad", "Du har loggats ut från tjänsten.",
                              "Använder du en delad dator: stäng webbläsaren helt."},
                             {"You are logged out", "You have been logged out of the service.",
                              "If you use a shared computer, close the browser completely."}},
    [EID_PAGE_LOGOUT_CONFIRM] = {{"Logga ut?", "Vill du logga ut från tjänsten?",
                                  "Tryck på knappen för att logga ut."},
                                 {"Log out?", "Do you want to log out of the service?",
                                  "Press the button to log out."}},
    [EID_PAGE_LOGOUT_CONTINUE] =
        {{"Du loggas ut", "Du är utloggad från tjänsten och skickas nu vidare för att logga ut "
          "hos din e-legitimationsleverantör också.", "Händer inget, tryck på knappen."},
         {"Logging you out", "You are logged out of the service and are now sent on to log "
          "out at your e-ID provider too.", "If nothing happens, press the button."}},
};

const char *const eid_level_fmt[2] = {
    "Den här sidan kräver inloggning med tillitsnivå %d eller högre (till exempel med "
    "SITHS-kort). Din inloggning har en lägre nivå.",
    "This page needs a login at level of assurance %d or higher (for example with a SITHS "
    "card). Your login has a lower level."};

"""A scripted browser for the OpenID provider's development login forms.

    oidc_browser.py code START_URL USER     follow a code-flow login to its end
    oidc_browser.py device VERIFY_URL USER  approve a device login

Only the standard library: cookies are kept, redirects followed by hand
(so the loopback redirect to gwctl is followed too), forms read with a
regex over the provider's small, stable HTML.
"""
import http.cookiejar
import re
import ssl
import sys
import urllib.error
import urllib.parse
import urllib.request

ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE  # the gateway's development certificate


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


jar = http.cookiejar.CookieJar()
opener = urllib.request.build_opener(
    urllib.request.HTTPCookieProcessor(jar),
    urllib.request.HTTPSHandler(context=ctx),
    NoRedirect,
)


def fetch(url, data=None):
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    try:
        resp = opener.open(urllib.request.Request(url, data=body), timeout=20)
        return resp.status, dict(resp.headers), resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode("utf-8", "replace")


def form(html):
    action = re.search(r'<form[^>]*action="([^"]*)"', html)
    fields = dict(re.findall(r'<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"', html))
    return (action.group(1) if action else None), fields


def follow(url, status, headers, html):
    while status in (301, 302, 303, 307, 308):
        url = urllib.parse.urljoin(url, headers.get("Location") or headers.get("location"))
        status, headers, html = fetch(url)
    return url, status, html


def drive(url, user, user_code=""):
    """Follows redirects and fills forms until a page without a form."""
    url, status, html = follow(url, *fetch(url))
    for _ in range(30):
        action, fields = form(html)
        if action is None:
            return status, html
        if 'name="login"' in html:
            fields.update({"prompt": "login", "login": user, "password": "x"})
        elif 'name="confirm"' in html:
            fields["confirm"] = "yes"
        elif 'name="user_code"' in html:
            fields.setdefault("user_code", user_code)
        else:
            fields.setdefault("prompt", "consent")
        target = urllib.parse.urljoin(url, action)
        url, status, html = follow(target, *fetch(target, fields))
    raise SystemExit("too many steps")


if __name__ == "__main__":
    mode, url, user = sys.argv[1:4]
    code = ""
    if mode == "device":
        q = urllib.parse.parse_qs(urllib.parse.urlparse(url).query)
        code = q.get("user_code", [""])[0]
    status, html = drive(url, user, code)
    text = re.sub(r"<[^>]+>", " ", html)
    print(status, " ".join(text.split())[:400])

"""A first pass at translating Jinja templates (README "Languages"): wraps the visible text of pages in
{% trans %}…{% endtrans %}, shown attributes and form macro labels in _('…'), in place. Review the result (names
of the values, sentences split by tags), then `make i18n-extract i18n-update` and translate the new entries.

    python tools/i18n_wrap.py src/accountdesk/<package>/templates/<package>/new_page.html

E-mails written as one copy per language (mail/templates/mail/{en,fr,de}/name.j2): `python tools/i18n_mail.py
src/accountdesk/mail/templates/mail` merges each into one name.j2 and prints the French and German texts as
translations for the catalogues (tab-separated: msgid, fr, de)."""
import re
import sys

TOKEN = re.compile(r"(\{%-?.*?-?%\}|\{#.*?#\}|\{\{.*?\}\}|<(?:[^>{]|\{\{.*?\}\}|\{%.*?%\}|\{)*>)", re.S)
EXPR = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}", re.S)
LETTER = re.compile(r"[^\W\d_]{2,}")
ATTR = re.compile(r'''(\s(?:placeholder|title|aria-label|alt)=)"([^"{}]*)"''')
SUBMIT_VALUE = re.compile(r'''(<input[^>]*type="(?:submit|button)"[^>]*\svalue=)"([^"{}]*)"''')
MACRO_LABEL = re.compile(r'''\b((?:field|select|checkbox|label_for)\(\s*\w+\s*,\s*(?:"[^"]*"|'[^']*'|[\w.]+)\s*,\s*)'''
                         r'''("[^"]*"|'[^']*')''', re.S)
KW = re.compile(r'''\b((?:hint|blank)=)("[^"]*"|'[^']*')''')
COND = re.compile(r'''("[^"]*"|'[^']*')(\s+if\s)|(\selse\s+)("[^"]*"|'[^']*')''')


def lit(s):
    return s if not LETTER.search(s) else f"_({s})"


def wrap_expr(expr):
    expr = MACRO_LABEL.sub(lambda m: m.group(1) + lit(m.group(2)), expr)
    expr = KW.sub(lambda m: m.group(1) + lit(m.group(2)), expr)
    expr = COND.sub(lambda m: (lit(m.group(1)) + m.group(2)) if m.group(1) else (m.group(3) + lit(m.group(4))), expr)
    return expr


def var_name(expr, used):
    base = re.sub(r"\W+", "_", expr.split("|")[0].strip()).strip("_").lower()
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", base) or len(base) > 30 or base in ("true", "false", "none"):
        base = "value"
    name, n = base, 2
    while name in used and used[name] != expr:
        name, n = f"{base}{n}", n + 1
    used[name] = expr
    return name


def visible(text):
    return LETTER.search(EXPR.sub("", text)) is not None


def trans_run(text, names=None):
    m = re.match(r"^(\s*)(.*?)(\s*)$", text, re.S)
    lead, body, trail = m.groups()
    used = {} if names is None else names
    params = {}
    def sub(mm):
        expr = mm.group(1)
        name = var_name(expr, used)
        params[name] = expr
        return "{{ " + name + " }}"
    body2 = EXPR.sub(sub, body)
    return lead, body2, params, trail


def wrap_text(text):
    if not visible(text):
        return EXPR.sub(lambda m: m.group(0).replace(m.group(1), wrap_expr(m.group(1))), text)
    lead, body, params, trail = trans_run(text)
    args = ", ".join((k if v == k else f"{k}={v}") for k, v in params.items())
    return f"{lead}{{% trans{(' ' + args) if args else ''} %}}{body}{{% endtrans %}}{trail}"


def _translated_attribute(match):
    name, text = match.group(1), match.group(2)
    return match.group(0) if not LETTER.search(text) else f'{name}"{{{{ _({text!r}) }}}}"'


def wrap_tag(tag):
    return SUBMIT_VALUE.sub(_translated_attribute, ATTR.sub(_translated_attribute, tag))


def split(source):
    """tokens with expressions folded back into text runs: even = text run, odd = tag/statement/comment."""
    parts = TOKEN.split(source)
    out, run = [], ""
    for i, part in enumerate(parts):
        if i % 2 == 0 or part.startswith("{{"):
            run += part
        else:
            out += [run, part]
            run = ""
    out.append(run)
    return out


def wrap(source):
    out = []
    in_trans = False
    for i, part in enumerate(split(source)):
        if i % 2:
            if part.startswith("{%"):
                words = part.strip("{%- ").split()
                kw = words[0] if words else ""
                if kw == "trans":
                    in_trans = True
                elif kw == "endtrans":
                    in_trans = False
                out.append(wrap_expr(part) if kw in ("call", "set") else part)
            elif part.startswith("<"):
                out.append(wrap_tag(part))
            else:
                out.append(part)
        else:
            out.append(part if in_trans else wrap_text(part))
    return "".join(out)


if __name__ == "__main__":
    for path in sys.argv[1:]:
        src = open(path).read()
        new = wrap(src)
        if new != src:
            open(path, "w").write(new)

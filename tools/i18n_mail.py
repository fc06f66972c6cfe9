"""Merge e-mails kept as one copy per language (<dir>/{en,fr,de}/name.j2, the same lines in each) into one template
per e-mail (<dir>/name.j2, English as msgids), line by line; prints msgid<TAB>fr<TAB>de for the catalogues. The
copies stay: delete them once the catalogues hold the translations."""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from i18n_wrap import split, trans_run, visible, wrap_tag  # noqa: E402


def runs(source):
    """list of (kind, text) pieces where text runs are split per line."""
    out = []
    for i, part in enumerate(split(source)):
        if i % 2:
            out.append(("tok", part))
        else:
            for line in re.split(r"(\n)", part):
                out.append(("nl" if line == "\n" else "txt", line))
    return out

def msgid(body):
    s = re.sub(r"\{\{ (\w+) \}\}", r"%(\1)s", body.replace("%", "%%"))
    return re.sub(r"\s*\n\s*", " ", s.strip())

def merge(en_src, others):
    en = runs(en_src)
    oth = {k: runs(v) for k, v in others.items()}
    out, pairs = [], []
    for k, o in oth.items():
        assert [t for t, _ in o] == [t for t, _ in en], k
    for idx, (kind, text) in enumerate(en):
        if kind == "tok":
            out.append(wrap_tag(text) if text.startswith("<") else text)
        elif kind == "nl" or not visible(text):
            out.append(text)
        else:
            lead, body, params, trail = trans_run(text)
            args = ", ".join((k if v == k else f"{k}={v}") for k, v in params.items())
            out.append(f"{lead}{{% trans{(' ' + args) if args else ''} %}}{body}{{% endtrans %}}{trail}")
            entry = {"msgid": msgid(body)}
            for lang, o in oth.items():
                _, obody, oparams, _ = trans_run(o[idx][1])
                assert set(oparams) == set(params), (lang, text, o[idx][1])
                entry[lang] = msgid(obody)
            pairs.append(entry)
    return "".join(out), pairs

if __name__ == "__main__":
    base = sys.argv[1]
    for name in sorted(os.listdir(f"{base}/en")):
        en = open(f"{base}/en/{name}").read()
        merged, pairs = merge(en, {lang: open(f"{base}/{lang}/{name}").read() for lang in ("fr", "de")})
        open(f"{base}/{name}", "w").write(merged)
        for entry in pairs:
            print(f"{entry['msgid']}\t{entry['fr']}\t{entry['de']}")

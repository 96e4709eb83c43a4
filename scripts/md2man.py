#!/usr/bin/env python3
"""Turn one of pgnap's Markdown documents into a man page (roff, man macros).

The man pages are built from the documents themselves, so they cannot say something the
documents do not: pgnap.toml(5) from docs/configuration.md, pgnap(1) from docs/cli.md.

    md2man.py --name pgnap.toml --section 5 --summary "..." --version 0.2.0 \
              --date 2026-12-06 [--see-also "pgnap(1)"] INPUT.md OUTPUT

What the documents use, and what it becomes:
  # Title                the page's title line; dropped (NAME comes from --name/--summary)
  text before the first ## DESCRIPTION
  ## Heading             .SH HEADING (upper case, Markdown stripped)
  ### Heading            .SS Heading
  paragraphs             .PP (lines joined; a line ending in two spaces or a backslash breaks)
  - item / 1. item       .IP with a bullet or the number; indented continuation lines join
  ```fenced code```      .EX/.EE, literal, indented
  | tables |             one .TP entry per row: the first cell is the tag, the others follow as
                         "Header: value." except a "meaning" column, which becomes the text
  `code` **b** *i*       \\fB, \\fB, \\fI (man's convention: literal text in bold)
  [text](target)         text; an http(s) target follows in angle brackets, a document of
                         pgnap's is named as a file in /usr/share/doc/pgnap
  term / ": definition"  .TP term (a definition list, as in docs/cli.md)
  <!-- comment -->       nothing (notes for readers of the Markdown only)
No other Markdown is used by these documents; anything else passes through as text.
"""

import argparse
import re
import sys

DOC_DIR = "/usr/share/doc/pgnap"


def escape(text):
    """Escape roff's special characters in plain text."""
    text = text.replace("\\", "\\e")
    return text


def protect_line_start(line):
    """A line starting with . or ' would be read as a request."""
    if line.startswith(".") or line.startswith("'"):
        return "\\&" + line
    return line


def inline(text):
    """Markdown inline markup to roff font changes, escaping everything else."""
    out = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "`":
            end = text.find("`", i + 1)
            if end > i:
                code = escape(text[i + 1:end]).replace("-", "\\-")
                out.append("\\fB" + code + "\\fR")
                i = end + 1
                continue
        if text.startswith("**", i):
            end = text.find("**", i + 2)
            if end > i:
                out.append("\\fB" + inline(text[i + 2:end]) + "\\fR")
                i = end + 2
                continue
        if c == "*" and i + 1 < len(text) and text[i + 1] not in " *":
            end = text.find("*", i + 1)
            if end > i and text[end - 1] != " ":
                out.append("\\fI" + inline(text[i + 1:end]) + "\\fR")
                i = end + 1
                continue
        if c == "[":
            m = re.match(r"\[([^\]]+)\]\(([^)\s]+)\)", text[i:])
            if m:
                label, target = m.group(1), m.group(2)
                out.append(inline(label))
                if target.startswith("http://") or target.startswith("https://"):
                    out.append(" <" + escape(target) + ">")
                elif not target.startswith("#"):
                    doc = target.split("#", 1)[0]
                    name = doc.rsplit("/", 1)[-1]
                    if name and not label.strip("`").endswith(name):
                        out.append(" (" + escape(name) + " in " + DOC_DIR + ")")
                i += m.end()
                continue
        out.append(escape(c))
        i += 1
    # Font changes nest badly in roff: \fB inside \fB...\fR ends both at the inner \fR.
    return "".join(out)


def plain(text):
    """Heading text without Markdown."""
    return re.sub(r"[`*]", "", text)


def split_row(line):
    cells = line.strip().strip("|").split("|")
    return [cell.strip() for cell in cells]


def table_to_roff(rows):
    """A Markdown table as one .TP entry per row."""
    header = [plain(cell) for cell in split_row(rows[0])]
    body = [split_row(row) for row in rows[2:]]
    out = []
    for cells in body:
        cells += [""] * (len(header) - len(cells))
        out.append(".TP")
        out.append(protect_line_start(inline(cells[0])))
        facts = []
        meaning = None
        for name, value in zip(header[1:], cells[1:]):
            if name.lower() == "meaning":
                meaning = value
            elif value:
                facts.append(name[:1].upper() + name[1:] + ": " + value.rstrip(".") + ".")
        text = " ".join(facts)
        if facts and meaning:
            out.append(protect_line_start(inline(text)))
            out.append(".br")
            out.append(protect_line_start(inline(meaning)))
        else:
            out.append(protect_line_start(inline(text or meaning or "")))
    return out


def convert(lines, args):
    out = [
        '.\\" Generated by scripts/md2man.py from %s; edit that file, not this one.' % args.source,
        '.TH "%s" "%s" "%s" "pgnap %s" "%s"'
        % (args.name.upper(), args.section, args.date, args.version, args.manual),
        # No hyphenation, ragged right: keys and paths stay whole (after .TH, which resets both).
        ".nr HY 0",
        ".nh",
        ".ad l",
        ".SH NAME",
        "%s \\- %s" % (escape(args.name).replace("-", "\\-"), escape(args.summary)),
    ]
    if args.synopsis:
        out.append(".SH SYNOPSIS")
        out.append(".nf")
        for line in args.synopsis:
            out.append(protect_line_start(inline(line)))
        out.append(".fi")
    seen_description = False
    paragraph = []

    def flush():
        if paragraph:
            out.append(".PP")
            for line in paragraph:
                out.append(protect_line_start(line))
            paragraph.clear()

    i = 0
    n = len(lines)
    while i < n:
        line = lines[i].rstrip("\n")
        stripped = line.strip()
        if line.startswith("# "):
            i += 1
            continue
        if not seen_description and stripped and not line.startswith("## ") and not stripped.startswith("<!--"):
            out.append(".SH DESCRIPTION")
            seen_description = True
        if line.startswith("## ") or line.startswith("### ") or line.startswith("#### "):
            flush()
            level = len(line) - len(line.lstrip("#"))
            raw = line[level:].strip()
            title = plain(raw)
            if level == 2:
                # Headings in words are upper case, as man pages have them; a table's name
                # ([gateway]) keeps its case.
                if "`" not in raw:
                    title = title.upper()
                out.append('.SH "%s"' % escape(title).replace('"', "'"))
            else:
                out.append('.SS "%s"' % escape(title).replace('"', "'"))
            seen_description = True
            i += 1
            continue
        if stripped.startswith("```"):
            flush()
            out.append(".PP")
            out.append(".RS 4")
            out.append(".EX")
            i += 1
            while i < n and not lines[i].strip().startswith("```"):
                out.append(protect_line_start(escape(lines[i].rstrip("\n")).replace("-", "\\-")))
                i += 1
            out.append(".EE")
            out.append(".RE")
            i += 1
            continue
        if stripped.startswith("|") and i + 1 < n and re.match(r"^\s*\|[\s:|-]+\|\s*$", lines[i + 1]):
            flush()
            rows = []
            while i < n and lines[i].strip().startswith("|"):
                rows.append(lines[i])
                i += 1
            out.extend(table_to_roff(rows))
            out.append(".PP")
            continue
        if stripped.startswith("<!--"):
            flush()
            while i < n and "-->" not in lines[i]:
                i += 1
            i += 1
            continue
        if i + 1 < n and lines[i + 1].startswith(": "):
            flush()
            out.append(".TP")
            out.append(protect_line_start(inline(stripped)))
            i += 1
            text = [lines[i][2:].strip()]
            i += 1
            while i < n and lines[i].startswith("  ") and lines[i].strip():
                text.append(lines[i].strip())
                i += 1
            out.append(protect_line_start(inline(" ".join(text))))
            continue
        item = re.match(r"^(\s*)([-*]|\d+\.)\s+(.*)$", line)
        if item:
            flush()
            indent = len(item.group(1))
            marker = "\\(bu" if item.group(2) in "-*" else item.group(2)
            text = [item.group(3)]
            i += 1
            while i < n:
                nxt = lines[i].rstrip("\n")
                if not nxt.strip() or re.match(r"^\s*([-*]|\d+\.)\s+", nxt) or nxt.strip().startswith("```"):
                    break
                if len(nxt) - len(nxt.lstrip()) <= indent:
                    break
                text.append(nxt.strip())
                i += 1
            if indent:
                out.append(".RS 4")
            out.append('.IP "%s" 4' % marker)
            out.append(protect_line_start(inline(" ".join(text))))
            if indent:
                out.append(".RE")
            continue
        if not stripped:
            flush()
            i += 1
            continue
        paragraph.append(inline(stripped))
        i += 1
    flush()
    if args.see_also:
        out.append(".SH \"SEE ALSO\"")
        out.append(", ".join("\\fB%s\\fR(%s)" % tuple(ref.rstrip(")").split("(")) if "(" in ref else escape(ref)
                             for ref in args.see_also))
        out.append(".PP")
        out.append("The documentation in \\fI%s\\fR." % DOC_DIR)
    return "\n".join(out) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--name", required=True)
    parser.add_argument("--section", required=True)
    parser.add_argument("--summary", required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--date", required=True)
    parser.add_argument("--manual", default="pgnap manual")
    parser.add_argument("--synopsis", action="append", default=[])
    parser.add_argument("--see-also", action="append", default=[])
    parser.add_argument("--source", default=None)
    parser.add_argument("input")
    parser.add_argument("output")
    args = parser.parse_args()
    if args.source is None:
        args.source = args.input
    with open(args.input, encoding="utf-8") as f:
        lines = f.readlines()
    page = convert(lines, args)
    with open(args.output, "w", encoding="utf-8") as f:
        f.write(page)
    return 0


if __name__ == "__main__":
    sys.exit(main())

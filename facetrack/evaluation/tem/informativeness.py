"""How much a facial action says about one clip: TEM's informativeness table (README "Informativeness").

A facet that almost every FEC-Bench reference states ("the mouth opens": 88 % of the 800 references, "looks
forward": 60 %) says little about which clip a caption describes; one that few state ("shrugs") says a lot. Like
CIDEr's IDF, TEM weighs each content item by its informativeness,

    informativeness(key) = max(FLOOR, 1 - df(key)),   df = share of the 800 FEC-Bench test references stating it,

where the key is the facet's unit, its directions for a directional unit, and "ceased" / "not" flags
(`facet_key`). 1 - df is the chance that another clip's reference does *not* state the action, so matching a
statement that any clip's caption would make earns little. The table is fixed data in `lexicon_data.py`
("informativeness": keys with a value below 1; any other key is worth 1), so a score never depends on the set being
evaluated. Regenerate it after a change to the extractor or the lexicon:

    python -m facetrack.evaluation.tem.informativeness ../shared/data/dfec_test.json          # print the table
    python -m facetrack.evaluation.tem.informativeness ../shared/data/dfec_test.json --write  # into lexicon_data.py
"""

from __future__ import annotations

import argparse
import json
import pprint
import re
import sys
from collections import Counter
from pathlib import Path

from facetrack.evaluation.tem.events import RuleEventExtractor
from facetrack.evaluation.tem.lexicon import event_keys, parse_event

FLOOR = 0.1
def table(references: list[str]) -> dict[str, float]:
    """{key: informativeness} for the keys worth less than 1, rounded to 3 decimals, most common first."""
    extractor = RuleEventExtractor()
    counts: Counter = Counter()
    for caption in references:
        counts.update({key for event in extractor.extract_one(caption) for key in event_keys(parse_event(event.text))})
    values = {key: round(max(FLOOR, 1 - count / len(references)), 3) for key, count in counts.most_common()}
    return {key: value for key, value in values.items() if value < 1}


def write(values: dict[str, float], path: Path) -> None:
    """Replace the "informativeness" section of lexicon_data.py."""
    source = path.read_text(encoding="utf-8")
    body = pprint.pformat(values, width=100, sort_dicts=False).replace("\n", "\n" + " " * 22)
    section = f" 'informativeness': {body},\n"
    pattern = re.compile(r"^ 'informativeness': \{.*?\},\n", re.DOTALL | re.MULTILINE)
    if pattern.search(source):
        source = pattern.sub(lambda _: section, source, count=1)
    else:
        source = source.replace(" 'noun_actions': ", section + " 'noun_actions': ", 1)
    path.write_text(source, encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("annotations", help="FEC-Bench test annotations (dfec_test.json)")
    parser.add_argument("--write", action="store_true", help="write the table into lexicon_data.py")
    args = parser.parse_args()
    references = [item["caption"] for item in json.loads(Path(args.annotations).read_text(encoding="utf-8"))]
    values = table(references)
    if args.write:
        write(values, Path(__file__).resolve().parent / "lexicon_data.py")
        print(f"wrote {len(values)} keys from {len(references)} references", file=sys.stderr)
    else:
        json.dump(values, sys.stdout, indent=1)
        sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Captioning metrics of the FEC-Bench table: CIDEr-D, ROUGE-L, BLEU-4, METEOR (NLTK), and the WordNet data METEOR
needs. Corpus-level metrics (CIDEr's IDF comes from the whole reference set), so they stay out of the per-pair TEM
metric Space."""

from __future__ import annotations

import contextlib
import functools
import io
import os
import re
import warnings
from pathlib import Path


from facetrack.evaluation.errors import BenchmarkError


METEOR_NOTE = (
    "METEOR is NLTK's (WordNet synonyms, Porter stems, its own parameters), not coco-caption's Java METEOR 1.5: on "
    "FEC-Bench-style captions it reads 0.12-0.20 higher (issue 13's measurement), so compare it only with other NLTK METEOR "
    "figures"
)


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens without punctuation (what coco-caption's Java PTB tokenizer produces, near enough)."""
    return re.findall(r"[a-z0-9]+(?:'[a-z]+)?", text.lower())


_LEXNAMES = (
    "adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute noun.body "
    "noun.cognition noun.communication noun.event noun.feeling noun.food noun.group noun.location noun.motive "
    "noun.object noun.person noun.phenomenon noun.plant noun.possession noun.process noun.quantity "
    "noun.relation noun.shape noun.state noun.substance noun.time verb.body verb.change verb.cognition "
    "verb.communication verb.competition verb.consumption verb.contact verb.creation verb.emotion verb.motion "
    "verb.perception verb.possession verb.social verb.stative verb.weather adj.ppl"
).split()
_LEXNAME_CATEGORY = {"adj": 3, "adv": 4, "noun": 1, "verb": 2}


@functools.lru_cache(maxsize=1)
def load_wordnet():
    """WordNet for METEOR: (reader, None) or (None, reason it is unavailable).

    Looks in NLTK's data path first, then in a WordNet 3.0 database directory: $WORDNET_DIR or /usr/share/wordnet
    (Debian/Ubuntu package `wordnet-base`). NLTK's WordNet data cannot be downloaded here and no PyPI package ships
    it. The Debian package lacks the `lexnames` file NLTK's reader opens, so the database files are copied into
    ~/.cache/facetrack/nltk_data/corpora/wordnet with the fixed WordNet 3.0 list of lexnames (lexnames(5WN)).
    """
    import nltk

    try:
        return _english_wordnet(str(nltk.data.find("corpora/wordnet"))), None
    except LookupError:
        pass
    import shutil

    source = Path(os.environ.get("WORDNET_DIR", "/usr/share/wordnet"))
    if not (source / "data.noun").is_file():
        return None, (
            f"METEOR unavailable: no WordNet data (NLTK's corpora/wordnet is not installed and {source} has no "
            "WordNet 3.0 database; install it with `apt-get install wordnet-base` or set WORDNET_DIR)"
        )
    # An NLTK data folder of our own (NLTK only reads corpora under its data path); files are copied, not
    # linked, because NLTK refuses paths that resolve outside its data path.
    data_root = Path(os.environ.get("FACETRACK_CACHE", Path.home() / ".cache" / "facetrack")) / "nltk_data"
    target = data_root / "corpora" / "wordnet"
    if not (target / "lexnames").is_file():
        target.mkdir(parents=True, exist_ok=True)
        for file in source.iterdir():
            if file.is_file():
                shutil.copyfile(file, target / file.name)
        lines = [f"{index:02d}\t{name}\t{_LEXNAME_CATEGORY[name.split('.')[0]]}" for index, name in enumerate(_LEXNAMES)]
        (target / "lexnames").write_text("\n".join(lines) + "\n")  # written last: marks a complete copy
    if str(data_root) not in nltk.data.path:
        nltk.data.path.append(str(data_root))
    return _english_wordnet(str(target)), None


def _english_wordnet(root: str):
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    class EnglishWordNet(WordNetCorpusReader):
        def map_wn(self, version="wordnet"):
            return None  # the WordNet 3.0 sense-key mapping only serves multilingual (OMW) lookups, unused here

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "multilingual functions are not available": expected
        return EnglishWordNet(root, None)


def caption_metrics(predictions: list[str], references: list[str]) -> dict:
    """Corpus CIDEr-D (pycocoevalcap; on its 0-10 scale), ROUGE-L F (rouge-score, 0-1), BLEU-4 (pycocoevalcap's
    coco-caption Bleu, 0-1) and METEOR (NLTK's, 0-1, with WordNet; None and a `meteor_note` when WordNet is
    unavailable). CIDEr, BLEU-4 and METEOR read the same tokens: lower-cased words without punctuation (`tokenize`),
    so punctuation can neither add nor remove n-gram matches."""
    if len(predictions) != len(references):
        raise BenchmarkError(f"{len(predictions)} predictions but {len(references)} references")
    if not predictions:
        raise BenchmarkError("no predictions to score")
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from rouge_score import rouge_scorer

    result: dict = {}
    tokens_pred = [tokenize(text) for text in predictions]
    tokens_ref = [tokenize(text) for text in references]
    cider, _ = Cider().compute_score(
        {index: [" ".join(tokens)] for index, tokens in enumerate(tokens_ref)},
        {index: [" ".join(tokens)] for index, tokens in enumerate(tokens_pred)},
    )
    result["cider"] = float(cider)
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    result["rouge_l"] = float(sum(scorer.score(r, p)["rougeL"].fmeasure for p, r in zip(predictions, references)) / len(predictions))
    with contextlib.redirect_stdout(io.StringIO()):  # coco-caption's Bleu prints its n-gram counts
        bleu, _ = Bleu(4).compute_score(
            {index: [" ".join(tokens)] for index, tokens in enumerate(tokens_ref)},
            {index: [" ".join(tokens)] for index, tokens in enumerate(tokens_pred)},
        )
    result["bleu4"] = float(bleu[3])
    wordnet, reason = load_wordnet()
    if wordnet is None:
        result["meteor"] = None
        result["meteor_note"] = reason
    else:
        from nltk.translate.meteor_score import meteor_score

        scores = [meteor_score([r], p, wordnet=wordnet) for p, r in zip(tokens_pred, tokens_ref)]
        result["meteor"] = float(sum(scores) / len(scores))
        result["meteor_note"] = METEOR_NOTE
    return result

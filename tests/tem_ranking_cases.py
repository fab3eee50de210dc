"""Hand-labelled TEM ranking cases for issue 22: for a reference, pairs of captions where a careful reader prefers the
first ("better") to the second ("worse"), grouped by the class of problem they probe.

Classes: base (paraphrase > one event missing > reversed order > another clip's caption), time (an event told at the
wrong moment), degree (a fainter / stronger degree, grin / smirk / smile), markers (time words outside the old list,
narrative order, text before the first marker), parsing (a bit / bite, appearance, "no change", a missing direction,
camera and hair motion), hidden (hallucinations inside with / showing / revealing / as), volume (padding and
repetition), empty.

`TUNED` was written first and used while changing the metric; `HELD_OUT` was written afterwards, in the same classes
but with other references and wordings, and only measured (its share is reported, not tuned on).
"""

from __future__ import annotations

# ------------------------------------------------------------------------------------------------ references
R = {
    "woman_surprise": (
        "This video shows a young woman with short brown hair. At the beginning of the video, she looks straight "
        "ahead with her mouth closed. As the video progresses, she raises her eyebrows slightly and her eyes widen. "
        "In the middle of the video, she smiles faintly, the corners of her mouth turning up a little. Towards the "
        "end of the video, she lowers her head and closes her eyes."),
    "man_frown": (
        "The video shows a middle-aged man with a grey beard. At the beginning of the video, he frowns deeply and "
        "presses his lips together. As the video progresses, he turns his head to the left and looks down. In the "
        "middle of the video, he opens his mouth and starts speaking, then nods twice. Towards the end of the video, "
        "he stops speaking and his eyebrows relax."),
    "girl_glance": (
        "At the beginning of the video, she blinks and smiles. Towards the end of the video, she looks to the right "
        "and her smile fades."),
    "old_woman_tears": (
        "This video shows an elderly woman with white hair. At the beginning of the video, her eyes are half-closed "
        "and her head is tilted slightly to the right. As the video progresses, she opens her eyes, raises her head, "
        "and looks straight at the camera. In the middle of the video, her lips tremble and she bites her lower lip. "
        "Towards the end of the video, she cries and looks down."),
    "yawn": (
        "At the beginning of the video, he yawns widely. In the middle of the video, he blinks several times and "
        "squints. Towards the end of the video, he smiles and nods."),
    "glasses_man": (
        "This video shows a young man with glasses. At the beginning of the video, he has slight wrinkles on his "
        "forehead and frowns a bit. In the middle of the video, there is no obvious change in his expression except "
        "that he blinks. Towards the end of the video, he opens his mouth a bit and smiles."),
    "laughing_woman": (
        "At the beginning of the video, she turns her head to the left. In the middle of the video, she smiles "
        "broadly, showing her teeth. Towards the end of the video, she tilts her head back and laughs."),
    "eyebrow_man": (
        "The video shows a man in a suit. At the beginning of the video, he raises his eyebrows. In the middle of "
        "the video, he smiles, revealing his upper teeth. Towards the end of the video, he nods slowly."),
    "ceiling": (
        "At the beginning of the video, she looks up at the ceiling. In the middle of the video, she turns her head "
        "to the right. Towards the end of the video, she looks down and sighs."),
    "faint_smile_man": (
        "At the beginning of the video, he smiles faintly. In the middle of the video, his eyes widen slightly. "
        "Towards the end of the video, he laughs with his mouth wide open."),
    "frown_then_smile": (
        "At the beginning of the video, she frowns. As the video progresses, she shakes her head. In the middle of "
        "the video, she opens her mouth to speak. Towards the end of the video, she smiles slightly and tilts her "
        "head to the left."),
    "blink_brow_close": (
        "At the beginning of the video, he blinks. In the middle of the video, he raises his eyebrows. Towards the "
        "end of the video, he closes his eyes."),
    "smirk": (
        "At the beginning of the video, he looks at the camera with a neutral expression. In the middle of the "
        "video, he smirks. Towards the end of the video, he rolls his eyes."),
    "fec_style": (
        "This video shows the changing facial expressions of a young man. He has short black hair and thick "
        "eyebrows.\nAt the beginning of the video, his eyes are open, looking straight ahead, and his mouth is "
        "closed. As the video progresses, his eyebrows slightly furrow and he starts speaking, his lips moving.\n"
        "In the middle of the video, he tilts his head slightly to the right and blinks twice.\nTowards the end of "
        "the video, he stops speaking, presses his lips together, and lowers his head."),
}

# Base variants for each reference of the base class: a faithful paraphrase, the same with one event missing, the
# phases told in reverse order, and another clip's caption.
BASE = {
    "woman_surprise": dict(
        paraphrase=("A woman with short brown hair is filmed. Initially, her lips are shut and she gazes straight "
                    "ahead. Then her brows lift slightly and her eyes open wide. Midway through, she gives a faint "
                    "smile as the corners of her mouth curl up a little. Finally, her head drops and her eyes shut."),
        missing=("A woman with short brown hair is filmed. Initially, her lips are shut and she gazes straight "
                 "ahead. Then her brows lift slightly and her eyes open wide. Midway through, she gives a faint "
                 "smile as the corners of her mouth curl up a little. Finally, her head drops."),
        reversed=("At the beginning of the video, she lowers her head and closes her eyes. As the video "
                  "progresses, she smiles faintly, the corners of her mouth turning up a little. In the middle of the "
                  "video, she raises her eyebrows slightly and her eyes widen. Towards the end of the video, she "
                  "looks straight ahead with her mouth closed."),
        other="man_frown"),
    "man_frown": dict(
        paraphrase=("A middle-aged man with a grey beard appears. At first, his brows knit tightly and his lips are "
                    "pressed together. After that, his head turns to the left and he glances down. Halfway through, "
                    "his mouth opens as he begins to talk, then he nods twice. In the end, he stops talking and his "
                    "brows relax."),
        missing=("A middle-aged man with a grey beard appears. At first, his brows knit tightly and his lips are "
                 "pressed together. After that, his head turns to the left and he glances down. Halfway through, his "
                 "mouth opens as he begins to talk. In the end, he stops talking and his brows relax."),
        reversed=("At the beginning of the video, he stops speaking and his eyebrows relax. As the video "
                  "progresses, he opens his mouth and starts speaking, then nods twice. In the middle of the video, "
                  "he turns his head to the left and looks down. Towards the end of the video, he frowns deeply and "
                  "presses his lips together."),
        other="old_woman_tears"),
    "girl_glance": dict(
        paraphrase="First, she smiles and blinks. Later, she glances to the right as her smile disappears.",
        missing="First, she smiles and blinks. Later, she glances to the right.",
        reversed=("At the beginning of the video, she looks to the right and her smile fades. Towards the end of "
                  "the video, she blinks and smiles."),
        other="yawn"),
    "old_woman_tears": dict(
        paraphrase=("An old woman with white hair is shown. Initially, her eyes are half-closed and her head tips "
                    "a little to the right. Next, her eyes open, her head rises, and she gazes into the camera. "
                    "Midway through, she bites her lower lip and her lips quiver. Finally, she weeps and looks "
                    "downward."),
        missing=("An old woman with white hair is shown. Initially, her eyes are half-closed and her head tips a "
                 "little to the right. Next, her eyes open, her head rises, and she gazes into the camera. Midway "
                 "through, her lips quiver. Finally, she weeps and looks downward."),
        reversed=("At the beginning of the video, she cries and looks down. As the video progresses, her lips "
                  "tremble and she bites her lower lip. In the middle of the video, she opens her eyes, raises her "
                  "head, and looks straight at the camera. Towards the end of the video, her eyes are half-closed "
                  "and her head is tilted slightly to the right."),
        other="laughing_woman"),
    "yawn": dict(
        paraphrase=("At first, he gives a wide yawn. Halfway through, he squints and blinks several times. In the "
                    "end, he nods and smiles."),
        missing="At first, he gives a wide yawn. Halfway through, he squints. In the end, he nods and smiles.",
        reversed=("At the beginning of the video, he smiles and nods. In the middle of the video, he blinks "
                  "several times and squints. Towards the end of the video, he yawns widely."),
        other="girl_glance"),
    "laughing_woman": dict(
        paraphrase=("Initially, her head turns left. Midway, she gives a broad smile that shows her teeth. At the "
                    "end, she throws her head back and laughs."),
        missing="Initially, her head turns left. Midway, she gives a broad smile that shows her teeth. At the end, "
                "she laughs.",
        reversed=("At the beginning of the video, she tilts her head back and laughs. In the middle of the video, "
                  "she smiles broadly, showing her teeth. Towards the end of the video, she turns her head to the "
                  "left."),
        other="ceiling"),
    "ceiling": dict(
        paraphrase=("At first, she gazes up at the ceiling. Then her head turns to the right. Finally, she sighs "
                    "and looks downward."),
        missing="At first, she gazes up at the ceiling. Then her head turns to the right. Finally, she looks downward.",
        reversed=("At the beginning of the video, she looks down and sighs. In the middle of the video, she turns "
                  "her head to the right. Towards the end of the video, she looks up at the ceiling."),
        other="laughing_woman"),
    "frown_then_smile": dict(
        paraphrase=("Initially, her brows knit. Next, she shakes her head. Halfway through, her mouth opens as she "
                    "begins to talk. At the end, she tips her head to the left and smiles slightly."),
        missing=("Initially, her brows knit. Next, she shakes her head. Halfway through, her mouth opens as she "
                 "begins to talk. At the end, she tips her head to the left."),
        reversed=("At the beginning of the video, she smiles slightly and tilts her head to the left. As the video "
                  "progresses, she opens her mouth to speak. In the middle of the video, she shakes her head. "
                  "Towards the end of the video, she frowns."),
        other="fec_style"),
    "fec_style": dict(
        paraphrase=("A young man with short black hair is filmed. At the start, his mouth is shut and his eyes are "
                    "open, gazing straight ahead. Then he begins to talk, his lips moving, and his brows knit "
                    "slightly. Midway through, he blinks twice and tips his head a little to the right. In the end, "
                    "he stops talking, lowers his head, and presses his lips together."),
        missing=("A young man with short black hair is filmed. At the start, his mouth is shut and his eyes are "
                 "open, gazing straight ahead. Then he begins to talk, his lips moving, and his brows knit slightly. "
                 "Midway through, he blinks twice and tips his head a little to the right. In the end, he stops "
                 "talking and lowers his head."),
        reversed=("At the beginning of the video, he stops speaking, presses his lips together, and lowers his "
                  "head. As the video progresses, he tilts his head slightly to the right and blinks twice. In the "
                  "middle of the video, his eyebrows slightly furrow and he starts speaking, his lips moving. "
                  "Towards the end of the video, his eyes are open, looking straight ahead, and his mouth is "
                  "closed."),
        other="frown_then_smile"),
}


def base_pairs(base: dict, references: dict) -> list[dict]:
    """paraphrase > missing > reversed > other, and paraphrase > other, for each reference of `base`."""
    pairs = []
    for name, v in base.items():
        other = references[v["other"]]
        for better, worse in (("paraphrase", "missing"), ("missing", "reversed"), ("reversed", "other"),
                              ("paraphrase", "other")):
            pairs.append({"class": "base", "reference": name, "better": v[better] if better != "other" else other,
                          "worse": v[worse] if worse != "other" else other, "why": f"{better} > {worse}"})
    return pairs


# Pairs written for one class each: (class, reference, better, worse, why).
CLASS_PAIRS: list[tuple[str, str, str, str, str]] = [
    # ---- time: an event told at the wrong moment
    ("time", "woman_surprise", BASE["woman_surprise"]["paraphrase"],
     "Initially, she gives a faint smile, her lips shut, and she gazes straight ahead. Then her brows lift slightly "
     "and her eyes open wide. Midway through, the corners of her mouth curl up a little. Finally, her head drops "
     "and her eyes shut.",
     "the faint smile told at the beginning instead of the middle"),
    ("time", "frown_then_smile",
     "Initially, her brows knit. Next, she shakes her head. Halfway through, her mouth opens as she begins to talk "
     "and she smiles slightly. At the end, she tips her head to the left.",
     "Initially, her brows knit and she smiles slightly. Next, she shakes her head. Halfway through, her mouth "
     "opens as she begins to talk. At the end, she tips her head to the left.",
     "the smile one phase early beats the smile three phases early"),
    ("time", "frown_then_smile", BASE["frown_then_smile"]["paraphrase"],
     "Initially, her brows knit. Next, she shakes her head. Halfway through, her mouth opens as she begins to talk "
     "and she smiles slightly. At the end, she tips her head to the left.",
     "the smile at its own moment beats it one phase early"),
    ("time", "blink_brow_close",
     "First, he blinks. Then his eyebrows go up. At the end, his eyes close.",
     "First, his eyes close. Then his eyebrows go up. At the end, he blinks.",
     "the first and last events swapped"),
    ("time", "yawn", BASE["yawn"]["paraphrase"],
     "At first, he gives a wide yawn and nods and smiles. Halfway through, he squints and blinks several times.",
     "the end's nod and smile told at the start"),
    ("time", "ceiling", BASE["ceiling"]["paraphrase"],
     "At first, she looks down and sighs. Then her head turns to the right. Finally, she gazes up at the ceiling.",
     "looking up and looking down swapped between start and end"),
    ("time", "eyebrow_man",
     "At first, his eyebrows lift. Then he smiles, showing his upper teeth. Finally, he nods slowly.",
     "At first, he nods slowly. Then he smiles, showing his upper teeth. Finally, his eyebrows lift.",
     "the raise and the nod swapped"),
    # ---- degree
    ("degree", "faint_smile_man",
     "First, a faint smile crosses his face. Midway, his eyes widen slightly. Finally, he laughs with his mouth "
     "wide open.",
     "First, he grins broadly. Midway, his eyes widen slightly. Finally, he laughs with his mouth wide open.",
     "a faint smile is not a broad grin"),
    ("degree", "faint_smile_man",
     "First, a faint smile crosses his face. Midway, his eyes widen slightly. Finally, he laughs with his mouth "
     "wide open.",
     "First, a faint smile crosses his face. Midway, his eyes widen enormously. Finally, he laughs with his mouth "
     "wide open.",
     "slightly wider eyes are not enormously wider"),
    ("degree", "faint_smile_man",
     "First, a faint smile crosses his face. Midway, his eyes widen slightly. Finally, he laughs with his mouth "
     "wide open.",
     "First, a faint smile crosses his face. Midway, his eyes widen slightly. Finally, he laughs with his mouth "
     "slightly open.",
     "a mouth wide open is not slightly open"),
    ("degree", "smirk",
     "At first, he looks into the camera, his face neutral. Midway through, he smirks. In the end, he rolls his "
     "eyes.",
     "At first, he looks into the camera, his face neutral. Midway through, he grins broadly. In the end, he rolls "
     "his eyes.",
     "a smirk is not a broad grin"),
    ("degree", "smirk",
     "At first, he looks into the camera, his face neutral. Midway through, he smiles slightly. In the end, he "
     "rolls his eyes.",
     "At first, he looks into the camera, his face neutral. Midway through, he beams. In the end, he rolls his "
     "eyes.",
     "a slight smile is closer to a smirk than beaming"),
    ("degree", "man_frown", BASE["man_frown"]["paraphrase"],
     "A middle-aged man with a grey beard appears. At first, his brows knit slightly and his lips are pressed "
     "together. After that, his head turns to the left and he glances down. Halfway through, his mouth opens as he "
     "begins to talk, then he nods twice. In the end, he stops talking and his brows relax.",
     "a deep frown is not a slight one"),
    ("degree", "laughing_woman", BASE["laughing_woman"]["paraphrase"],
     "Initially, her head turns left. Midway, she gives a faint smile that shows her teeth. At the end, she throws "
     "her head back and laughs.",
     "a broad smile is not a faint one"),
    ("degree", "yawn", BASE["yawn"]["paraphrase"],
     "At first, he gives a small yawn. Halfway through, he squints and blinks several times. In the end, he nods "
     "and smiles.",
     "a wide yawn is not a small one"),
    # ---- markers: time words, narrative order, text before the first marker
    ("markers", "yawn",
     "Towards the end, he smiles and nods. Before that, in the middle, he squints and blinks several times. At "
     "first, he yawns widely.",
     BASE["yawn"]["reversed"],
     "the timeline told backwards in narrative order is still the right timeline"),
    ("markers", "yawn",
     "First, he yawns widely. Then he squints and blinks several times. Finally, he smiles and nods.",
     BASE["yawn"]["reversed"],
     "First / Then / Finally are phases"),
    ("markers", "blink_brow_close",
     "He blinks. Later, his eyebrows go up. Finally, his eyes close.",
     "His eyes close. Later, his eyebrows go up. Finally, he blinks.",
     "the sentence before the first marker is the first phase, not appearance"),
    ("markers", "blink_brow_close",
     "At the end, he closes his eyes. Earlier, he raises his eyebrows. At first, he blinks.",
     "At the end, he blinks. Earlier, he raises his eyebrows. At first, he closes his eyes.",
     "Earlier / At first: the right timeline told from the end"),
    ("markers", "girl_glance",
     "At first, she blinks and smiles. Later on, she looks to the right and her smile fades.",
     "At first, she looks to the right and her smile fades. Later on, she blinks and smiles.",
     "At first / Later on"),
    ("markers", "frown_then_smile",
     "She frowns. Next, she shakes her head. Then she opens her mouth to speak. Finally, she smiles slightly and "
     "tilts her head to the left.",
     "She smiles slightly and tilts her head to the left. Next, she opens her mouth to speak. Then she shakes her "
     "head. Finally, she frowns.",
     "a caption without the standard markers"),
    ("markers", "laughing_woman",
     "Towards the end of the video, she tilts her head back and laughs. Before that, she smiles broadly, showing "
     "her teeth. At the very beginning, she turns her head to the left.",
     "Towards the end of the video, she turns her head to the left. Before that, she smiles broadly, showing her "
     "teeth. At the very beginning, she tilts her head back and laughs.",
     "Before that / At the very beginning"),
    # ---- parsing slips
    ("parsing", "glasses_man",
     "A young man in glasses is shown. Initially, his forehead is slightly wrinkled and he frowns slightly. "
     "Midway through, nothing changes apart from a blink. In the end, his mouth opens slightly and he smiles.",
     "A young man in glasses is shown. Initially, his forehead is slightly wrinkled and he frowns slightly. "
     "Midway through, nothing changes apart from a blink. In the end, he bites his lip and smiles.",
     "'a bit' is not a form of 'bite'"),
    ("parsing", "glasses_man",
     "Initially, he has slight wrinkles on his forehead and frowns slightly. Midway through, he blinks. In the end, "
     "his mouth opens slightly and he smiles.",
     "Initially, he frowns slightly. Midway through, he blinks. In the end, his mouth opens slightly and he smiles.",
     "'he has slight wrinkles on his forehead' inside a phase is a facial state, not appearance"),
    ("parsing", "glasses_man",
     "Initially, he has slight wrinkles on his forehead and frowns slightly. Midway through, his expression shows "
     "no obvious change, except that he blinks. In the end, his mouth opens slightly and he smiles.",
     "Initially, he has slight wrinkles on his forehead and frowns slightly. Midway through, his expression shows "
     "no obvious change. In the end, his mouth opens slightly and he smiles.",
     "the 'no change' filter keeps the blink"),
    ("parsing", "ceiling", BASE["ceiling"]["paraphrase"],
     "At first, she keeps a focused gaze. Then her head turns to the right. Finally, she sighs and looks downward.",
     "a focused gaze is not looking up at the ceiling"),
    ("parsing", "ceiling",
     "At first, she looks upward. Then her head turns. Finally, she sighs and looks downward.",
     "At first, she looks upward. Then her head turns to the left. Finally, she sighs and looks downward.",
     "an unstated direction is less wrong than the opposite one"),
    ("parsing", "ceiling", BASE["ceiling"]["paraphrase"],
     "At first, she looks upward. Then her head turns. Finally, she sighs and looks downward.",
     "the stated direction beats no direction"),
    ("parsing", "laughing_woman", BASE["laughing_woman"]["paraphrase"],
     "Initially, the camera turns to the left and her hair sways. Midway, she gives a broad smile that shows her "
     "teeth. At the end, the camera tilts back as she laughs.",
     "camera and hair motion are not head motion"),
    ("parsing", "old_woman_tears", BASE["old_woman_tears"]["paraphrase"],
     "An old woman with white hair is shown. Initially, her eyes are half-closed and her hair falls to the right. "
     "Next, her eyes open, the camera rises, and she gazes into the camera. Midway through, she bites her lower lip "
     "and her lips quiver. Finally, she weeps and looks downward.",
     "hair falling and the camera rising are not head movements"),
    # ---- hidden hallucinations in with / showing / revealing / as
    ("hidden", "eyebrow_man",
     "Initially, his brows go up. Midway, he smiles and his upper teeth show. Finally, he nods slowly.",
     "Initially, his brows go up, with his tongue sticking out. Midway, he smiles, showing his upper teeth and "
     "squinting his eyes tightly. Finally, he nods slowly as his cheeks puff out.",
     "hallucinations attached with with / showing / as"),
    ("hidden", "eyebrow_man",
     "Initially, his brows go up. Midway, he smiles and his upper teeth show. Finally, he nods slowly.",
     "Initially, his brows go up, revealing deep wrinkles between his eyebrows. Midway, he smiles, revealing his "
     "upper teeth. Finally, he nods slowly.",
     "a hallucinated frown line attached with 'revealing'"),
    ("hidden", "woman_surprise", BASE["woman_surprise"]["paraphrase"],
     "A woman with short brown hair is filmed. Initially, her lips are shut and she gazes straight ahead, with her "
     "head tilted to the left. Then her brows lift slightly and her eyes open wide. Midway through, she gives a "
     "faint smile as the corners of her mouth curl up a little. Finally, her head drops and her eyes shut.",
     "a head tilt hidden in a with-clause"),
    ("hidden", "fec_style", BASE["fec_style"]["paraphrase"],
     "A young man with short black hair is filmed. At the start, his mouth is shut and his eyes are open, gazing "
     "straight ahead. Then he begins to talk, his lips moving, and his brows knit slightly, showing his tongue. "
     "Midway through, he blinks twice and tips his head a little to the right, as his nostrils flare. In the end, "
     "he stops talking, lowers his head, and presses his lips together.",
     "a tongue and flaring nostrils hidden in showing / as clauses"),
    ("hidden", "laughing_woman", BASE["laughing_woman"]["paraphrase"],
     "Initially, her head turns left. Midway, she gives a broad smile that shows her teeth, with her eyes closed. "
     "At the end, she throws her head back and laughs.",
     "closed eyes hidden in a with-clause"),
    # ---- volume: padding and repetition
    ("volume", "blink_brow_close",
     "First, he blinks. Then his eyebrows go up. At the end, his eyes close.",
     "First, he blinks. Then his eyebrows go up. At the end, his eyes close. " + R["yawn"] + " " + R["girl_glance"],
     "the right caption padded with two other clips' captions"),
    ("volume", "girl_glance", BASE["girl_glance"]["paraphrase"],
     "First, she smiles and blinks, blinks again, smiles again, and blinks once more. Later, she glances to the "
     "right, then to the right again, as her smile disappears.",
     "every event said two or three times"),
    ("volume", "yawn", BASE["yawn"]["paraphrase"],
     BASE["yawn"]["paraphrase"] + " He also frowns, raises his eyebrows, turns his head to the left, purses his "
     "lips, puffs out his cheeks, and shakes his head.",
     "a list of every common action added"),
    # ---- empty
    ("empty", "girl_glance", "At first, she blinks.", "", "something right beats nothing"),
    ("empty", "fec_style", BASE["fec_style"]["missing"], "", "something right beats nothing"),
]


def tuned_pairs() -> list[dict]:
    pairs = base_pairs(BASE, R)
    for cls, ref, better, worse, why in CLASS_PAIRS:
        pairs.append({"class": cls, "reference": ref, "better": better, "worse": worse, "why": why})
    return [{**pair, "reference_text": R[pair["reference"]]} for pair in pairs]


TUNED = tuned_pairs()


# ------------------------------------------------------------------------------------------------ held out
# Written after the metric's rules were settled on TUNED; measured, not tuned on.
HR = {
    "nurse": (
        "This video shows a middle-aged woman in a nurse's uniform. At the beginning of the video, she purses her "
        "lips and glances to the left. As the video progresses, her eyebrows draw together and she shakes her head "
        "slightly. In the middle of the video, she sighs and closes her eyes. Towards the end of the video, she "
        "opens her eyes, looks at the camera, and gives a small smile."),
    "boy": (
        "At the beginning of the video, the boy's eyes widen and his mouth drops open. Then he raises his eyebrows "
        "high and blinks twice. Finally, he laughs and tilts his head back."),
    "old_man": (
        "The video shows an elderly man with a white beard. At the beginning of the video, he speaks with his mouth "
        "opening and closing, and his eyebrows are slightly raised. In the middle of the video, he pauses, presses "
        "his lips together, and looks down to the right. Towards the end of the video, he nods slightly and resumes "
        "speaking."),
    "teen": (
        "At the beginning of the video, the teenager rolls her eyes and sighs. As the video progresses, she rests "
        "her chin on her hand and looks away. In the middle of the video, she yawns. Towards the end of the video, "
        "she frowns slightly and turns her head to the right."),
    "broad_smile": (
        "At the beginning of the video, he smiles broadly. Towards the end of the video, he frowns deeply."),
    "bit": (
        "At the beginning of the video, he looks straight ahead. In the middle of the video, he opens his mouth a "
        "bit. Towards the end of the video, he blinks slowly."),
    "head_left": (
        "At the beginning of the video, he turns his head to the left. Towards the end of the video, he smiles."),
}

HELD_OUT_BASE = {
    "nurse": dict(
        paraphrase=("A middle-aged woman dressed as a nurse is filmed. Initially, she looks to the left with her lips "
                    "pursed. Then she shakes her head a little as her brows knit. Halfway through, she shuts her eyes "
                    "and sighs. At the end, her eyes open, she gazes into the camera, and a slight smile appears."),
        missing=("A middle-aged woman dressed as a nurse is filmed. Initially, she looks to the left with her lips "
                 "pursed. Then she shakes her head a little as her brows knit. Halfway through, she shuts her eyes. "
                 "At the end, her eyes open, she gazes into the camera, and a slight smile appears."),
        reversed=("At the beginning of the video, she opens her eyes, looks at the camera, and gives a small smile. "
                  "As the video progresses, she sighs and closes her eyes. In the middle of the video, her eyebrows "
                  "draw together and she shakes her head slightly. Towards the end of the video, she purses her lips "
                  "and glances to the left."),
        other="boy"),
    "boy": dict(
        paraphrase=("At first, the boy's eyes go wide and his jaw drops. After that, his brows shoot up high and he "
                    "blinks twice. In the end, he throws his head back and laughs."),
        missing=("At first, the boy's eyes go wide and his jaw drops. After that, his brows shoot up high. In the "
                 "end, he throws his head back and laughs."),
        reversed=("At the beginning of the video, he laughs and tilts his head back. Then he raises his eyebrows high "
                  "and blinks twice. Finally, the boy's eyes widen and his mouth drops open."),
        other="old_man"),
    "old_man": dict(
        paraphrase=("An old man with a white beard is shown. Initially, he talks, his mouth opening and closing, "
                    "with his brows raised a little. Midway through, he stops for a moment, his lips pressed "
                    "together, and gazes down to the right. Finally, he gives a slight nod and starts talking again."),
        missing=("An old man with a white beard is shown. Initially, he talks, his mouth opening and closing, with "
                 "his brows raised a little. Midway through, he stops for a moment, his lips pressed together. "
                 "Finally, he gives a slight nod and starts talking again."),
        reversed=("At the beginning of the video, he nods slightly and resumes speaking. In the middle of the video, "
                  "he pauses, presses his lips together, and looks down to the right. Towards the end of the video, "
                  "he speaks with his mouth opening and closing, and his eyebrows are slightly raised."),
        other="teen"),
    "teen": dict(
        paraphrase=("Initially, the teenager sighs and rolls her eyes. Next, she props her chin on her hand and "
                    "glances away. Halfway through, she yawns. At the end, she frowns a little and turns her head to "
                    "the right."),
        missing=("Initially, the teenager sighs and rolls her eyes. Next, she props her chin on her hand and glances "
                 "away. Halfway through, she yawns. At the end, she frowns a little."),
        reversed=("At the beginning of the video, she frowns slightly and turns her head to the right. As the video "
                  "progresses, she yawns. In the middle of the video, she rests her chin on her hand and looks away. "
                  "Towards the end of the video, the teenager rolls her eyes and sighs."),
        other="nurse"),
}

HELD_OUT_CLASS_PAIRS: list[tuple[str, str, str, str, str]] = [
    # ---- time
    ("time", "nurse", HELD_OUT_BASE["nurse"]["paraphrase"],
     "A middle-aged woman dressed as a nurse is filmed. Initially, she looks to the left with her lips pursed and a "
     "slight smile appears. Then she shakes her head a little as her brows knit. Halfway through, she shuts her "
     "eyes and sighs. At the end, her eyes open and she gazes into the camera.",
     "the smile moved from the end to the start"),
    ("time", "old_man",
     "Initially, he talks, his mouth opening and closing, with his brows raised a little. Midway through, he nods "
     "slightly, stops for a moment, his lips pressed together, and gazes down to the right. Finally, he starts "
     "talking again.",
     "Initially, he nods slightly and talks, his mouth opening and closing, with his brows raised a little. Midway "
     "through, he stops for a moment, his lips pressed together, and gazes down to the right. Finally, he starts "
     "talking again.",
     "the nod one phase early beats the nod two phases early"),
    ("time", "teen", HELD_OUT_BASE["teen"]["paraphrase"],
     "Initially, the teenager sighs and rolls her eyes. Next, she props her chin on her hand and glances away. At "
     "the end, she yawns, frowns a little and turns her head to the right.",
     "the yawn told at the end"),
    ("time", "head_left", "First, his head turns to the left. Later, he smiles.",
     "First, he smiles. Later, his head turns to the left.", "the two events swapped"),
    # ---- degree
    ("degree", "nurse", HELD_OUT_BASE["nurse"]["paraphrase"],
     "A middle-aged woman dressed as a nurse is filmed. Initially, she looks to the left with her lips pursed. Then "
     "she shakes her head a little as her brows knit. Halfway through, she shuts her eyes and sighs. At the end, "
     "her eyes open, she gazes into the camera, and she beams broadly.",
     "a small smile is not beaming broadly"),
    ("degree", "old_man", HELD_OUT_BASE["old_man"]["paraphrase"],
     "An old man with a white beard is shown. Initially, he talks, his mouth opening and closing, with his brows "
     "raised a little. Midway through, he stops for a moment, his lips pressed together, and gazes down to the "
     "right. Finally, he nods vigorously and starts talking again.",
     "a slight nod is not a vigorous one"),
    ("degree", "broad_smile", "First, he grins. Finally, he scowls.",
     "First, he smirks. Finally, he frowns slightly.", "a grin and a scowl are the broad smile and deep frown"),
    ("degree", "broad_smile", "Initially, a wide smile spreads across his face. At the end, his brows knit tightly.",
     "Initially, a faint smile crosses his face. At the end, his brows knit tightly.", "broad is not faint"),
    # ---- markers
    ("markers", "boy",
     "Finally, he throws his head back and laughs. Before this, his brows shoot up high and he blinks twice. To "
     "begin with, his eyes go wide and his jaw drops.",
     HELD_OUT_BASE["boy"]["reversed"], "the timeline told from the end with Before this / To begin with"),
    ("markers", "teen",
     "First, the teenager rolls her eyes and sighs. Next, she rests her chin on her hand and looks away. Then she "
     "yawns. Lastly, she frowns slightly and turns her head to the right.",
     "First, she frowns slightly and turns her head to the right. Next, she yawns. Then she rests her chin on her "
     "hand and looks away. Lastly, the teenager rolls her eyes and sighs.",
     "First / Next / Then / Lastly"),
    ("markers", "nurse",
     "She purses her lips and glances to the left. After that, her brows knit and she shakes her head slightly. "
     "Then she sighs and closes her eyes. In the end, she opens her eyes, looks at the camera, and gives a small "
     "smile.",
     "She opens her eyes, looks at the camera, and gives a small smile. After that, her brows knit and she shakes "
     "her head slightly. Then she sighs and closes her eyes. In the end, she purses her lips and glances to the "
     "left.",
     "the sentence before the first marker is the opening phase"),
    ("markers", "head_left", "At the end, he smiles. Earlier, he turned his head to the left.",
     "At the end, he turns his head to the left. Earlier, he smiled.", "Earlier: told from the end"),
    # ---- parsing
    ("parsing", "bit",
     "At first, he gazes straight ahead. Midway through, his lips part a little. In the end, he blinks slowly.",
     "At first, he gazes straight ahead. Midway through, he bites his lip. In the end, he blinks slowly.",
     "'a bit' is not biting"),
    ("parsing", "nurse",
     "Initially, she has pursed lips and glances to the left. Then she shakes her head a little as her brows knit. "
     "Halfway through, she shuts her eyes and sighs. At the end, her eyes open, she gazes into the camera, and a "
     "slight smile appears.",
     "Initially, she glances to the left. Then she shakes her head a little as her brows knit. Halfway through, she "
     "shuts her eyes and sighs. At the end, her eyes open, she gazes into the camera, and a slight smile appears.",
     "'she has pursed lips' inside a phase is an event"),
    ("parsing", "teen",
     "Initially, the teenager sighs and rolls her eyes. Next, she props her chin on her hand and glances away. "
     "Halfway through, her expression stays the same except that she yawns. At the end, she frowns a little and "
     "turns her head to the right.",
     "Initially, the teenager sighs and rolls her eyes. Next, she props her chin on her hand and glances away. "
     "Halfway through, her expression stays the same. At the end, she frowns a little and turns her head to the "
     "right.",
     "the 'no change' filter keeps the yawn"),
    ("parsing", "old_man",
     "Initially, he talks, his mouth opening and closing, with his brows raised a little. Midway through, he stops "
     "for a moment, his lips pressed together, and looks down. Finally, he gives a slight nod and starts talking "
     "again.",
     "Initially, he talks, his mouth opening and closing, with his brows raised a little. Midway through, he stops "
     "for a moment, his lips pressed together, and looks up to the left. Finally, he gives a slight nod and starts "
     "talking again.",
     "part of the direction beats the opposite direction"),
    ("parsing", "head_left", "First, his head turns to the left. Later, he smiles.",
     "First, the camera pans to the left and his hair swings. Later, he smiles.",
     "camera and hair motion are not a head turn"),
    # ---- hidden
    ("hidden", "old_man", HELD_OUT_BASE["old_man"]["paraphrase"],
     "An old man with a white beard is shown. Initially, he talks, his mouth opening and closing, with his brows "
     "raised a little and his eyes squeezed shut. Midway through, he stops for a moment, his lips pressed "
     "together, and gazes down to the right. Finally, he gives a slight nod and starts talking again.",
     "shut eyes hidden in a with-clause"),
    ("hidden", "boy", HELD_OUT_BASE["boy"]["paraphrase"],
     "At first, the boy's eyes go wide and his jaw drops, revealing his tongue sticking out. After that, his brows "
     "shoot up high and he blinks twice. In the end, he throws his head back and laughs as his nose wrinkles.",
     "a tongue and a wrinkled nose hidden in revealing / as clauses"),
    ("hidden", "teen", HELD_OUT_BASE["teen"]["paraphrase"],
     "Initially, the teenager sighs and rolls her eyes, showing a wide grin. Next, she props her chin on her hand "
     "and glances away. Halfway through, she yawns. At the end, she frowns a little and turns her head to the right.",
     "a grin hidden in a showing-clause"),
    # ---- volume
    ("volume", "teen", HELD_OUT_BASE["teen"]["paraphrase"],
     HELD_OUT_BASE["teen"]["paraphrase"] + " " + HR["nurse"] + " " + HR["boy"],
     "the right caption padded with two other clips' captions"),
    ("volume", "nurse", HELD_OUT_BASE["nurse"]["paraphrase"],
     "A middle-aged woman dressed as a nurse is filmed. Initially, she looks to the left, looks to the left again, "
     "and purses her lips twice. Then she shakes her head a little, shakes it again, and her brows knit again and "
     "again. Halfway through, she shuts her eyes and sighs, sighs again and shuts her eyes again. At the end, her "
     "eyes open, she gazes into the camera, and a slight smile appears, then another slight smile.",
     "every event said twice"),
    # ---- empty
    ("empty", "nurse", "Initially, she looks to the left.", "", "something right beats nothing"),
    ("empty", "boy", HELD_OUT_BASE["boy"]["missing"], "", "something right beats nothing"),
]


def held_out_pairs() -> list[dict]:
    pairs = base_pairs(HELD_OUT_BASE, HR)
    for cls, ref, better, worse, why in HELD_OUT_CLASS_PAIRS:
        pairs.append({"class": cls, "reference": ref, "better": better, "worse": worse, "why": why})
    return [{**pair, "reference_text": HR[pair["reference"]]} for pair in pairs]


HELD_OUT = held_out_pairs()

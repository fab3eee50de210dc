"""Hand-written TEM test cases: FEC-Bench-style references, each with a faithful paraphrase (same events, same
order, other words and other phase markers) and a negated caption (every event explicitly negated). The reordered,
missing-phase and other-person variants are derived mechanically in `variants()`.

Cases 0-21 were written first and used while extending the lexicon ("dev"); cases 22-43 were written afterwards and
only measured ("held-out"), see benchmarks/README.md.
"""

from __future__ import annotations

import re

CASES: list[tuple[str, str, str]] = [
    # 0
    ("This video shows a young woman with long black hair. At the beginning of the video, she raises her eyebrows and opens her mouth slightly. As the video progresses, she blinks and turns her head to the left. Towards the end of the video, she smiles and closes her eyes.",
     "A woman with dark hair appears in the clip. Initially, her eyebrows lift and her mouth parts a little. Then her eyes blink and her head turns left. Finally, she grins and shuts her eyes.",
     "At the beginning of the video, she does not raise her eyebrows and does not open her mouth. As the video progresses, she does not blink and her head does not turn to the left. Towards the end of the video, she does not smile and never closes her eyes."),
    # 1
    ("The video shows a middle-aged man with short grey hair. At the beginning of the video, he frowns and looks down. In the middle of the video, he tilts his head slightly upward and narrows his eyes. Towards the end of the video, he presses his lips together.",
     "A grey-haired man is shown. At first, his brows furrow and his gaze drops downward. Midway through, he tips his head up a little and his eyes squint. In the end, his lips are pressed tightly together.",
     "At the beginning of the video, he does not frown and does not look down. In the middle of the video, he doesn't tilt his head upward and his eyes do not narrow. Towards the end of the video, he does not press his lips together."),
    # 2
    ("This video shows the changing facial expressions of an elderly woman. At the beginning of the video, her eyes widen and her mouth opens wide. As the video progresses, she lowers her head. In the middle of the video, she knits her brow. Towards the end of the video, she shakes her head.",
     "An old woman's expressions change in this clip. Initially, she opens her eyes wide and her jaw drops. After that, her head drops down. Halfway through, her brow furrows. Lastly, she shakes her head from side to side.",
     "At the beginning of the video, her eyes do not widen and her mouth does not open. As the video progresses, she does not lower her head. In the middle of the video, she does not knit her brow. Towards the end of the video, she does not shake her head."),
    # 3
    ("The video shows a young man with curly hair. At the beginning of the video, he looks to the right and raises his eyebrows. As the video progresses, he nods. Towards the end of the video, he smiles, revealing his upper teeth, and his cheeks lift.",
     "A curly-haired young man is in the video. At first, he glances to the right and his eyebrows go up. Next, he nods his head. Finally, a smile shows his upper teeth and his cheeks rise.",
     "At the beginning of the video, he does not look to the right and does not raise his eyebrows. As the video progresses, he does not nod. Towards the end of the video, he does not smile and his cheeks do not lift."),
    # 4
    ("This video shows a woman with a ponytail. At the beginning of the video, her lips are tightly pursed. As the video progresses, she turns her head to the right and looks up. In the middle of the video, she blinks twice. Towards the end of the video, her mouth opens and she starts speaking.",
     "A woman wearing a ponytail is shown. Initially, she purses her lips firmly. Then her head rotates to the right and her gaze moves upward. Midway through, her eyes blink twice. At the end, her lips part and she begins to talk.",
     "At the beginning of the video, her lips are not pursed. As the video progresses, she does not turn her head to the right and does not look up. In the middle of the video, she does not blink. Towards the end of the video, her mouth does not open and she does not speak."),
    # 5
    ("The video shows an old man with a white beard. At the beginning of the video, he squints his eyes. As the video progresses, the corners of his mouth turn down. Towards the end of the video, he tilts his head to the left and closes his mouth.",
     "An elderly bearded man appears. At first, his eyes narrow. Later, his mouth corners droop downward. In the final part of the video, his head tilts leftward and his lips close.",
     "At the beginning of the video, he does not squint. As the video progresses, the corners of his mouth do not turn down. Towards the end of the video, he does not tilt his head to the left and does not close his mouth."),
    # 6
    ("This video shows a young woman with short brown hair. At the beginning of the video, she smiles slightly. In the middle of the video, she raises her head and her eyes widen. Towards the end of the video, she looks down and her eyebrows relax.",
     "A short-haired young woman is filmed. Initially, she gives a faint smile. Halfway through, she lifts her head and opens her eyes wide. Finally, her gaze lowers and her brows relax.",
     "At the beginning of the video, she does not smile. In the middle of the video, she does not raise her head and her eyes do not widen. Towards the end of the video, she does not look down and her eyebrows do not relax."),
    # 7
    ("The video shows a man wearing glasses. At the beginning of the video, he furrows his eyebrows and tightens his lips. As the video progresses, he turns his head to the left. Towards the end of the video, he opens his mouth and speaks.",
     "A man with glasses is shown. At first, his brows knit and his lips tighten. Then he rotates his head to the left. In the end, his mouth opens and he talks.",
     "At the beginning of the video, he does not furrow his eyebrows and his lips do not tighten. As the video progresses, he doesn't turn his head to the left. Towards the end of the video, he does not open his mouth and does not speak."),
    # 8
    ("This video shows a girl with braided hair. At the beginning of the video, she looks straight ahead and blinks. As the video progresses, she tilts her head to the right. In the middle of the video, she purses her lips. Towards the end of the video, she lowers her eyebrows.",
     "A girl with braids appears. Initially, she gazes forward and her eyes blink. After that, her head tilts to the right. Midway through, her lips pucker. Finally, her brows drop.",
     "At the beginning of the video, she does not look straight ahead and does not blink. As the video progresses, she does not tilt her head to the right. In the middle of the video, she does not purse her lips. Towards the end of the video, she does not lower her eyebrows."),
    # 9
    ("The video shows a middle-aged woman with curly hair. At the beginning of the video, her mouth is slightly open. As the video progresses, she closes her eyes and lowers her head. Towards the end of the video, she raises her eyebrows and smiles.",
     "A curly-haired woman in her forties appears. At first, her lips are a little parted. Then her eyes shut and her head bows. In the end, her eyebrows lift and she grins.",
     "At the beginning of the video, her mouth is not open. As the video progresses, she does not close her eyes and does not lower her head. Towards the end of the video, she does not raise her eyebrows and does not smile."),
    # 10
    ("This video shows a young man with a shaved head. At the beginning of the video, he raises his head and looks up. In the middle of the video, he narrows his eyes and frowns. Towards the end of the video, he shakes his head and opens his mouth.",
     "A bald young man is shown. Initially, he lifts his chin and gazes upward. Halfway through, he squints and his brows furrow. Lastly, he shakes his head and his mouth parts.",
     "At the beginning of the video, he does not raise his head and does not look up. In the middle of the video, he doesn't narrow his eyes and does not frown. Towards the end of the video, he does not shake his head and does not open his mouth."),
    # 11
    ("The video shows a woman with red hair. At the beginning of the video, she blinks and her eyes look to the left. As the video progresses, she smiles, showing her teeth. Towards the end of the video, she tilts her head down and closes her mouth.",
     "A red-haired woman appears. At first, her eyes blink and shift to the left. Then she grins, revealing her teeth. Finally, her head dips and her lips close.",
     "At the beginning of the video, she does not blink and her eyes do not look to the left. As the video progresses, she does not smile. Towards the end of the video, she does not tilt her head down and does not close her mouth."),
    # 12
    ("This video shows an elderly man with wrinkles. At the beginning of the video, he opens his eyes wide. As the video progresses, he raises his eyebrows and his forehead wrinkles. In the middle of the video, he turns his head to the right. Towards the end of the video, he lowers his head.",
     "A wrinkled old man is filmed. Initially, his eyes widen. After that, his brows arch upward and lines form on his forehead. Midway through, his head turns right. In the end, he bows his head.",
     "At the beginning of the video, he does not open his eyes wide. As the video progresses, he does not raise his eyebrows. In the middle of the video, he does not turn his head to the right. Towards the end of the video, he never lowers his head."),
    # 13
    ("The video shows a young woman with bangs. At the beginning of the video, she presses her lips together and looks down. As the video progresses, she raises her head and smiles. Towards the end of the video, she blinks and turns her head to the left.",
     "A woman with a fringe appears. At first, her lips press tightly and her gaze drops. Then she lifts her head and breaks into a smile. Finally, her eyes blink and she turns her head left.",
     "At the beginning of the video, she does not press her lips together and does not look down. As the video progresses, she does not raise her head and does not smile. Towards the end of the video, she does not blink and does not turn her head to the left."),
    # 14
    ("This video shows a man with a moustache. At the beginning of the video, his eyebrows are furrowed and his mouth is closed. As the video progresses, he opens his mouth and speaks. In the middle of the video, he nods twice. Towards the end of the video, his eyebrows relax and he smiles slightly.",
     "A man with a moustache is in the clip. Initially, his brows are knitted and his lips are shut. Then his mouth parts as he talks. Midway through, he nods his head twice. Lastly, his brow loosens and a faint smile appears.",
     "At the beginning of the video, his eyebrows are not furrowed and his mouth is not closed. As the video progresses, he does not open his mouth and does not speak. In the middle of the video, he does not nod. Towards the end of the video, his eyebrows do not relax and he does not smile."),
    # 15
    ("The video shows a teenage girl. At the beginning of the video, she looks up and her mouth opens slightly. As the video progresses, she frowns and lowers her head. Towards the end of the video, she shakes her head and closes her eyes.",
     "A teenage girl is shown. At first, her gaze rises and her lips part a little. Next, her brows knit and her head drops. Finally, she shakes her head and shuts her eyes.",
     "At the beginning of the video, she does not look up and her mouth does not open. As the video progresses, she does not frown and does not lower her head. Towards the end of the video, she does not shake her head and does not close her eyes."),
    # 16
    ("This video shows a middle-aged man with thinning hair. At the beginning of the video, he tilts his head to the left. In the middle of the video, his eyes narrow and the corners of his mouth lift. Towards the end of the video, he looks to the right and opens his mouth.",
     "A balding middle-aged man appears. Initially, his head tilts leftward. Halfway through, he squints and his mouth corners curl upward. In the end, his gaze shifts right and his lips part.",
     "At the beginning of the video, he does not tilt his head to the left. In the middle of the video, his eyes do not narrow and the corners of his mouth do not lift. Towards the end of the video, he does not look to the right and does not open his mouth."),
    # 17
    ("The video shows a young woman with glasses. At the beginning of the video, she smiles and blinks. As the video progresses, she raises her eyebrows and opens her eyes wide. Towards the end of the video, she presses her lips together and lowers her head.",
     "A young woman wearing spectacles appears. At first, she grins and her eyes blink. Then her brows lift and her eyes widen. Finally, her lips press together and her head drops.",
     "At the beginning of the video, she does not smile and does not blink. As the video progresses, she doesn't raise her eyebrows and her eyes do not widen. Towards the end of the video, she does not press her lips together and does not lower her head."),
    # 18
    ("This video shows an old woman with white hair. At the beginning of the video, her mouth is tightly closed and she looks down. As the video progresses, her eyebrows droop. In the middle of the video, she closes her eyes. Towards the end of the video, she opens her eyes and raises her head.",
     "A white-haired old woman is filmed. Initially, her lips are shut tight and her gaze is downward. Then her brows sag. Midway through, her eyes shut. Lastly, her eyes open and she lifts her head.",
     "At the beginning of the video, her mouth is not closed and she does not look down. As the video progresses, her eyebrows do not droop. In the middle of the video, she does not close her eyes. Towards the end of the video, she does not open her eyes and does not raise her head."),
    # 19
    ("The video shows a man with a beard. At the beginning of the video, he turns his head to the right and blinks. As the video progresses, he frowns and purses his lips. Towards the end of the video, he smiles and looks forward.",
     "A bearded man appears. At first, his head rotates right and his eyes blink. Next, his brows furrow and his lips pucker. In the end, he grins and gazes straight ahead.",
     "At the beginning of the video, he does not turn his head to the right and does not blink. As the video progresses, he does not frown and does not purse his lips. Towards the end of the video, he does not smile and does not look forward."),
    # 20
    ("This video shows a young woman with wavy hair. At the beginning of the video, she opens her mouth wide and raises her eyebrows. In the middle of the video, she closes her mouth and looks to the left. Towards the end of the video, she nods and smiles.",
     "A woman with wavy hair is shown. Initially, her jaw drops open and her brows shoot up. Halfway through, her lips close and her gaze moves to the left. Finally, she nods her head and grins.",
     "At the beginning of the video, she does not open her mouth and does not raise her eyebrows. In the middle of the video, she does not close her mouth and does not look to the left. Towards the end of the video, she does not nod and does not smile."),
    # 21
    ("The video shows a middle-aged woman with short hair. At the beginning of the video, she squints and tilts her head to the right. As the video progresses, her mouth opens slightly. Towards the end of the video, she lowers her eyebrows and presses her lips together.",
     "A short-haired woman in middle age appears. At first, her eyes narrow and her head tilts rightward. After that, her lips part a little. Lastly, her brows drop and her lips tighten.",
     "At the beginning of the video, she does not squint and does not tilt her head to the right. As the video progresses, her mouth does not open. Towards the end of the video, she does not lower her eyebrows and does not press her lips together."),
    # 22 (held-out from here)
    ("This video shows a young man with black hair. At the beginning of the video, he looks down and his eyebrows furrow. As the video progresses, he raises his head and opens his eyes wide. In the middle of the video, he turns his head to the left. Towards the end of the video, he smiles.",
     "A black-haired young man is filmed. Initially, his gaze drops and his brows knit. Then he lifts his head and his eyes widen. Midway through, his head rotates leftward. In the end, he breaks into a grin.",
     "At the beginning of the video, he does not look down and his eyebrows do not furrow. As the video progresses, he does not raise his head and his eyes do not widen. In the middle of the video, he does not turn his head to the left. Towards the end of the video, he does not smile."),
    # 23
    ("The video shows a woman with blonde hair. At the beginning of the video, she smiles and her cheeks lift. As the video progresses, she blinks and looks to the right. Towards the end of the video, her smile fades and she lowers her head.",
     "A blonde woman appears. At first, she grins and her cheeks rise. Next, her eyes blink and glance rightward. Finally, she stops smiling and her head drops.",
     "At the beginning of the video, she does not smile and her cheeks do not lift. As the video progresses, she does not blink and does not look to the right. Towards the end of the video, she does not lower her head."),
    # 24
    ("This video shows an elderly man with glasses. At the beginning of the video, he raises his eyebrows. As the video progresses, he opens his mouth and speaks. In the middle of the video, he shakes his head. Towards the end of the video, he closes his eyes and presses his lips together.",
     "An old man wearing glasses is shown. Initially, his brows go up. After that, his lips part and he talks. Halfway through, he shakes his head. Lastly, his eyes shut and his lips tighten.",
     "At the beginning of the video, he does not raise his eyebrows. As the video progresses, he does not open his mouth and does not speak. In the middle of the video, he does not shake his head. Towards the end of the video, he does not close his eyes and does not press his lips together."),
    # 25
    ("The video shows a girl with a hat. At the beginning of the video, her eyes widen and her mouth falls open. As the video progresses, she tilts her head to the left and smiles. Towards the end of the video, she blinks and looks down.",
     "A girl wearing a hat appears. At first, she opens her eyes wide and her jaw drops. Then her head tilts leftward and she grins. In the end, her eyes blink and her gaze lowers.",
     "At the beginning of the video, her eyes do not widen and her mouth does not open. As the video progresses, she does not tilt her head to the left and does not smile. Towards the end of the video, she does not blink and does not look down."),
    # 26
    ("This video shows a man with short brown hair. At the beginning of the video, he squints and the corners of his mouth turn down. In the middle of the video, he lowers his head and closes his eyes. Towards the end of the video, he raises his head and looks forward.",
     "A man with short brown hair is filmed. Initially, his eyes narrow and his mouth corners droop. Halfway through, his head drops and his eyes shut. Finally, he lifts his head and gazes straight ahead.",
     "At the beginning of the video, he does not squint and the corners of his mouth do not turn down. In the middle of the video, he does not lower his head and does not close his eyes. Towards the end of the video, he does not raise his head and does not look forward."),
    # 27
    ("The video shows a young woman with earrings. At the beginning of the video, she purses her lips and raises her eyebrows. As the video progresses, she turns her head to the right. Towards the end of the video, she opens her mouth slightly and blinks.",
     "A young woman wearing earrings appears. At first, her lips pucker and her brows lift. Next, her head rotates to the right. Lastly, her lips part a little and her eyes blink.",
     "At the beginning of the video, she does not purse her lips and does not raise her eyebrows. As the video progresses, she does not turn her head to the right. Towards the end of the video, she does not open her mouth and does not blink."),
    # 28
    ("This video shows a middle-aged man with a goatee. At the beginning of the video, he looks up and his mouth is closed. As the video progresses, he frowns. In the middle of the video, he tilts his head to the right and narrows his eyes. Towards the end of the video, he nods.",
     "A middle-aged man with a goatee is shown. Initially, his gaze rises and his lips are shut. Then his brows knit. Midway through, his head tilts rightward and he squints. In the end, he nods his head.",
     "At the beginning of the video, he does not look up and his mouth is not closed. As the video progresses, he does not frown. In the middle of the video, he does not tilt his head to the right and does not narrow his eyes. Towards the end of the video, he does not nod."),
    # 29
    ("The video shows an old woman with a scarf. At the beginning of the video, she smiles broadly, revealing her teeth. As the video progresses, she closes her mouth and looks to the left. Towards the end of the video, her eyebrows furrow and she shakes her head.",
     "An elderly woman wearing a scarf appears. At first, she grins widely and shows her teeth. After that, her lips close and her gaze shifts left. Finally, her brows knit and she shakes her head.",
     "At the beginning of the video, she does not smile. As the video progresses, she does not close her mouth and does not look to the left. Towards the end of the video, her eyebrows do not furrow and she does not shake her head."),
    # 30
    ("This video shows a young man with a cap. At the beginning of the video, he blinks and raises his head. As the video progresses, he opens his mouth wide. In the middle of the video, he lowers his eyebrows. Towards the end of the video, he turns his head to the left and smiles.",
     "A young man wearing a cap is filmed. Initially, his eyes blink and he lifts his head. Then his jaw drops wide open. Halfway through, his brows drop. Lastly, he rotates his head leftward and grins.",
     "At the beginning of the video, he does not blink and does not raise his head. As the video progresses, he does not open his mouth. In the middle of the video, he does not lower his eyebrows. Towards the end of the video, he does not turn his head to the left and does not smile."),
    # 31
    ("The video shows a woman with dark skin. At the beginning of the video, she looks down and presses her lips together. As the video progresses, her eyes widen and she raises her eyebrows. Towards the end of the video, she tilts her head to the right and opens her mouth.",
     "A dark-skinned woman is shown. At first, her gaze drops and her lips tighten. Next, she opens her eyes wide and her brows lift. In the end, her head tilts rightward and her lips part.",
     "At the beginning of the video, she does not look down and does not press her lips together. As the video progresses, her eyes do not widen and she does not raise her eyebrows. Towards the end of the video, she does not tilt her head to the right and does not open her mouth."),
    # 32
    ("This video shows a man with grey stubble. At the beginning of the video, he closes his eyes. As the video progresses, he opens his eyes and looks to the right. In the middle of the video, he smiles slightly. Towards the end of the video, he lowers his head and frowns.",
     "A man with grey stubble appears. Initially, his eyes shut. After that, his eyes open and glance rightward. Midway through, he gives a faint smile. Finally, his head drops and his brows furrow.",
     "At the beginning of the video, he does not close his eyes. As the video progresses, he does not open his eyes and does not look to the right. In the middle of the video, he does not smile. Towards the end of the video, he does not lower his head and does not frown."),
    # 33
    ("The video shows a young woman with a bun. At the beginning of the video, she raises her eyebrows and smiles. As the video progresses, she turns her head to the left and blinks. Towards the end of the video, she purses her lips and looks down.",
     "A young woman with her hair in a bun appears. At first, her brows arch and she grins. Then her head rotates to the left and her eyes blink. Lastly, her lips pucker and her gaze lowers.",
     "At the beginning of the video, she does not raise her eyebrows and does not smile. As the video progresses, she does not turn her head to the left and does not blink. Towards the end of the video, she does not purse her lips and does not look down."),
    # 34
    ("This video shows an elderly man with a hat. At the beginning of the video, he narrows his eyes and tightens his lips. In the middle of the video, he shakes his head. Towards the end of the video, he raises his eyebrows and opens his mouth.",
     "An old man in a hat is filmed. Initially, he squints and his lips press tightly. Halfway through, he shakes his head. In the end, his brows lift and his lips part.",
     "At the beginning of the video, he does not narrow his eyes and does not tighten his lips. In the middle of the video, he does not shake his head. Towards the end of the video, he does not raise his eyebrows and does not open his mouth."),
    # 35
    ("The video shows a girl with long hair. At the beginning of the video, she looks to the right and her mouth is slightly open. As the video progresses, she closes her mouth and tilts her head to the left. Towards the end of the video, she smiles and blinks.",
     "A long-haired girl appears. At first, her gaze moves to the right and her lips are a little parted. Next, her lips close and her head tilts leftward. Finally, she grins and her eyes blink.",
     "At the beginning of the video, she does not look to the right and her mouth is not open. As the video progresses, she does not close her mouth and does not tilt her head to the left. Towards the end of the video, she does not smile and does not blink."),
    # 36
    ("This video shows a middle-aged woman with freckles. At the beginning of the video, she frowns and looks down. As the video progresses, she raises her head. In the middle of the video, her eyes widen. Towards the end of the video, she opens her mouth and speaks.",
     "A freckled woman in middle age is shown. Initially, her brows furrow and her gaze drops. Then she lifts her head. Midway through, she opens her eyes wide. Lastly, her lips part and she talks.",
     "At the beginning of the video, she does not frown and does not look down. As the video progresses, she does not raise her head. In the middle of the video, her eyes do not widen. Towards the end of the video, she does not open her mouth and does not speak."),
    # 37
    ("The video shows a young man with a beard. At the beginning of the video, he smiles and nods. As the video progresses, he turns his head to the right and closes his eyes. Towards the end of the video, he opens his eyes and raises his eyebrows.",
     "A bearded young man appears. At first, he grins and nods his head. After that, his head rotates right and his eyes shut. In the end, his eyes open and his brows lift.",
     "At the beginning of the video, he does not smile and does not nod. As the video progresses, he does not turn his head to the right and does not close his eyes. Towards the end of the video, he does not open his eyes and does not raise his eyebrows."),
    # 38
    ("This video shows a woman with grey hair. At the beginning of the video, she tilts her head to the left and smiles. In the middle of the video, she presses her lips together and narrows her eyes. Towards the end of the video, she looks up and opens her mouth.",
     "A grey-haired woman is filmed. Initially, her head tilts leftward and she grins. Halfway through, her lips tighten and she squints. Finally, her gaze rises and her lips part.",
     "At the beginning of the video, she does not tilt her head to the left and does not smile. In the middle of the video, she does not press her lips together and does not narrow her eyes. Towards the end of the video, she does not look up and does not open her mouth."),
    # 39
    ("The video shows a man with a shaved head. At the beginning of the video, he raises his eyebrows and his eyes widen. As the video progresses, he lowers his head. In the middle of the video, he purses his lips. Towards the end of the video, he turns his head to the left and blinks.",
     "A bald man appears. At first, his brows shoot up and he opens his eyes wide. Then his head drops. Midway through, his lips pucker. Lastly, he rotates his head leftward and his eyes blink.",
     "At the beginning of the video, he does not raise his eyebrows and his eyes do not widen. As the video progresses, he does not lower his head. In the middle of the video, he does not purse his lips. Towards the end of the video, he does not turn his head to the left and does not blink."),
    # 40
    ("This video shows a young woman with a headband. At the beginning of the video, she looks forward and closes her mouth. As the video progresses, she frowns and shakes her head. Towards the end of the video, she smiles slightly and tilts her head to the right.",
     "A young woman wearing a headband appears. Initially, she gazes straight ahead and her lips close. Next, her brows knit and she shakes her head. In the end, she gives a faint smile and her head tilts rightward.",
     "At the beginning of the video, she does not look forward and does not close her mouth. As the video progresses, she does not frown and does not shake her head. Towards the end of the video, she does not smile and does not tilt her head to the right."),
    # 41
    ("The video shows an old man with a moustache. At the beginning of the video, his mouth opens and he speaks. As the video progresses, he narrows his eyes. In the middle of the video, he raises his head and looks up. Towards the end of the video, he closes his mouth and nods.",
     "An elderly man with a moustache is shown. At first, his lips part as he talks. Then he squints. Halfway through, he lifts his head and his gaze rises. Finally, his lips close and he nods his head.",
     "At the beginning of the video, his mouth does not open and he does not speak. As the video progresses, he does not narrow his eyes. In the middle of the video, he does not raise his head and does not look up. Towards the end of the video, he does not close his mouth and does not nod."),
    # 42
    ("This video shows a teenage boy. At the beginning of the video, he blinks and looks to the left. As the video progresses, his eyebrows furrow and he presses his lips together. Towards the end of the video, he raises his head and smiles.",
     "A teenage boy is filmed. Initially, his eyes blink and glance leftward. After that, his brows knit and his lips tighten. Lastly, he lifts his head and grins.",
     "At the beginning of the video, he does not blink and does not look to the left. As the video progresses, his eyebrows do not furrow and he does not press his lips together. Towards the end of the video, he does not raise his head and does not smile."),
    # 43
    ("The video shows a woman with a veil. At the beginning of the video, she lowers her head and closes her eyes. As the video progresses, she opens her eyes and raises her eyebrows. In the middle of the video, she turns her head to the right. Towards the end of the video, she opens her mouth slightly.",
     "A veiled woman appears. At first, her head drops and her eyes shut. Then her eyes open and her brows lift. Midway through, her head rotates rightward. In the end, her lips part a little.",
     "At the beginning of the video, she does not lower her head and does not close her eyes. As the video progresses, she does not open her eyes and does not raise her eyebrows. In the middle of the video, she does not turn her head to the right. Towards the end of the video, she does not open her mouth."),
]
DEV_CASES = range(0, 22)
HELD_OUT_CASES = range(22, len(CASES))

_MARKER = re.compile(r"(?=\b(?:At the beginning|As the video progresses|In the middle|Towards the end) of the video, )")


def phases(reference: str) -> tuple[str, list[str]]:
    """(introduction, [phase sentences]) of a case reference, split at its four standard markers (independently
    of the metric's own marker list)."""
    pieces = [piece.strip() for piece in _MARKER.split(reference) if piece.strip()]
    return pieces[0], pieces[1:]


def variants(index: int) -> dict[str, str]:
    """The captions compared with reference `index`: paraphrase, negated, reversed (each phase's content moved to
    the mirrored phase, markers kept), missing_phase (the middle phase dropped), other_person (the next case's
    reference)."""
    reference, paraphrase, negated = CASES[index]
    intro, phase_sentences = phases(reference)
    markers = [re.match(r"^(.*? of the video, )", s).group(1) for s in phase_sentences]
    contents = [s[len(m):] for s, m in zip(phase_sentences, markers)]
    reversed_caption = " ".join([intro] + [m + c for m, c in zip(markers, contents[::-1])])
    drop = len(phase_sentences) // 2
    missing = " ".join([intro] + [s for k, s in enumerate(phase_sentences) if k != drop])
    return {
        "paraphrase": paraphrase, "negated": negated, "reversed": reversed_caption, "missing_phase": missing,
        "other_person": CASES[(index + 1) % len(CASES)][0],
    }

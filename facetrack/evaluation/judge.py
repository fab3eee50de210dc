"""The paper's GPT-judged FEC-Bench columns (Correctness, Detail, Context, Temporal): Video-ChatGPT-style 0-5 scores
from any LLM behind an OpenAI-compatible endpoint (or a local chat model), cached on disk like TEM's LLM answers."""

from __future__ import annotations

import re

from facetrack.evaluation.errors import BenchmarkError
from facetrack.data.schema import FEC_BENCH_PROMPT


# Video-ChatGPT-style judge prompts (text only: the judge compares the prediction with the reference caption).
JUDGE_CRITERIA = {
    "judge_correctness": "factual accuracy: does the predicted description agree with the correct description about "
                         "the person's facial expressions and their changes, without contradictions or invented details",
    "judge_detail": "detail orientation: does the predicted description cover all the facial changes of the correct "
                    "description, with specific details rather than generic statements",
    "judge_context": "contextual understanding: does the predicted description capture the overall emotional context "
                     "and situation conveyed by the correct description",
    "judge_temporal": "temporal understanding: does the predicted description give the facial changes in the same "
                      "order over time as the correct description",
}
JUDGE_PROMPT = """You are an evaluator of video descriptions. Score the predicted description against the correct one for {criterion}.
Question: {question}
Correct description: {reference}
Predicted description: {prediction}
Give an integer score from 0 (worst) to 5 (best). Answer with only a JSON object like {{"score": 3}}."""


def judge_scores(predictions: list[str], references: list[str], judge_model: str, judge_base_url: str | None = None,
                 judge_api_key: str | None = None, question: str = FEC_BENCH_PROMPT, cache_dir: str | None = None) -> dict:
    """Mean 0-5 judge score per criterion (the paper's Correctness/Detail/Context/Temporal columns), from an LLM at an
    OpenAI-compatible endpoint (or a local chat model path); answers are cached on disk like TEM's LLM backends."""
    from facetrack.inference.llm import make_llm_client

    client = make_llm_client(judge_model, judge_base_url, judge_api_key, cache_dir, max_tokens=32)
    scores: dict = {}
    for key, criterion in JUDGE_CRITERIA.items():
        values = []
        for prediction, reference in zip(predictions, references):
            answer = client.complete(JUDGE_PROMPT.format(criterion=criterion, question=question, reference=reference,
                                                         prediction=prediction))
            match = re.search(r'"score"\s*:\s*(\d+(?:\.\d+)?)', answer) or re.search(r"\b([0-5](?:\.\d+)?)\b", answer)
            if match is None:
                raise BenchmarkError(f"the judge {judge_model!r} answered without a score: {answer[:200]!r}")
            values.append(min(max(float(match.group(1)), 0.0), 5.0))
        scores[key] = sum(values) / len(values)
    return scores

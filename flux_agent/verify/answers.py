"""Final-answer extraction and normalisation.

Extraction is plain string work (no maths library), so it runs in the caller's
process. Equivalence goes through the sandbox (`Sandbox.equivalent`).
"""

from __future__ import annotations

import re

_ANSWER_PHRASES = re.compile(
    r"(?:final answer|the answer|answer)\s*(?:is|:|=)\s*(.+)", flags=re.IGNORECASE
)
_NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?(?:/\d+)?")


def _boxed_contents(text: str) -> list[str]:
    """Contents of every \\boxed{...} (or \\fbox{...}), with nested braces handled."""
    found = []
    for match in re.finditer(r"\\(?:boxed|fbox)\s*\{", text):
        depth, start = 1, match.end()
        for index in range(start, len(text)):
            if text[index] == "{":
                depth += 1
            elif text[index] == "}":
                depth -= 1
                if depth == 0:
                    found.append(text[start:index])
                    break
    return found


def extract_answer(text: str) -> str | None:
    """The final answer a piece of text states, or None if it states none.

    Looks, in order, for the last `\\boxed{}`, an "answer is ..." phrase, a
    `#### N` line (GSM8K), and finally the last number in the text.
    """
    if not text or not text.strip():
        return None
    boxed = _boxed_contents(text)
    if boxed:
        return normalise_answer(boxed[-1])
    gsm = re.findall(r"####\s*(.+)", text)
    if gsm:
        return normalise_answer(gsm[-1])
    phrases = _ANSWER_PHRASES.findall(text)
    if phrases:
        candidate = phrases[-1].strip().splitlines()[0]
        candidate = re.split(r"(?<=\S)\.\s", candidate + " ")[0]
        candidate = candidate.rstrip(". ")
        if candidate:
            return normalise_answer(candidate)
    formula = re.fullmatch(r"\$+([^$]+)\$+", text.strip())
    if formula:
        return normalise_answer(formula.group(1))
    numbers = _NUMBER.findall(text)
    if numbers:
        return normalise_answer(numbers[-1])
    return None


def normalise_answer(answer: str) -> str:
    """Strip wrappers that never change an answer's meaning."""
    answer = answer.strip().strip("$").strip()
    answer = re.sub(r"^\\text\{(.*)\}$", r"\1", answer)
    answer = answer.replace("\\!", "").replace("\\,", "").replace("\\ ", " ")
    answer = answer.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    answer = re.sub(r"\\(?:left|right)(?=[()\[\]|.])", "", answer)
    if re.fullmatch(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?", answer):
        answer = answer.replace(",", "")
    return answer.rstrip(".").strip()

"""Answer normalisation and accuracy as the VQA v2 evaluation defines them."""

from __future__ import annotations

import re

_PUNCTUATION = (";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!")
_COMMA_BETWEEN_DIGITS = re.compile(r"(\d)(,)(\d)")
_PERIOD_NOT_IN_NUMBER = re.compile(r"(?!<=\d)(\.)(?!\d)")
_NUMBER_WORDS = {
    "none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
    "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10",
}
_ARTICLES = {"a", "an", "the"}
_CONTRACTIONS = {
    "arent": "aren't", "cant": "can't", "couldnt": "couldn't", "didnt": "didn't", "doesnt": "doesn't",
    "dont": "don't", "hadnt": "hadn't", "hasnt": "hasn't", "havent": "haven't", "isnt": "isn't",
    "itll": "it'll", "its": "it's", "shouldnt": "shouldn't", "thats": "that's", "theres": "there's",
    "theyre": "they're", "wasnt": "wasn't", "werent": "weren't", "whats": "what's", "wont": "won't",
    "wouldnt": "wouldn't", "youre": "you're",
}


def normalize(answer: str) -> str:
    """The VQA v2 answer normalisation: punctuation, then number words, articles and contractions.

    >>> normalize("The Red Car!")
    'red car'
    """
    text = answer.replace("\n", " ").replace("\t", " ").strip()
    text = _strip_punctuation(text)
    words = []
    for word in text.lower().split():
        word = _NUMBER_WORDS.get(word, word)
        if word in _ARTICLES:
            continue
        words.append(_CONTRACTIONS.get(word, word))
    return " ".join(words)


def _strip_punctuation(text: str) -> str:
    out = text
    for mark in _PUNCTUATION:
        # A mark next to a space, or a comma inside a number, is dropped; elsewhere it splits words.
        if f"{mark} " in text or f" {mark}" in text or _COMMA_BETWEEN_DIGITS.search(text):
            out = out.replace(mark, "")
        else:
            out = out.replace(mark, " ")
    return _PERIOD_NOT_IN_NUMBER.sub("", out)


def soft_accuracy(prediction: str, gold: list[str]) -> float:
    """VQA accuracy: min(#humans that said it / 3, 1), averaged over the leave-one-out subsets."""
    if not gold:
        return 0.0
    predicted = normalize(prediction)
    answers = [normalize(g) for g in gold]
    if len(answers) == 1:
        return float(predicted == answers[0])
    total = 0.0
    for left_out in range(len(answers)):
        matches = sum(a == predicted for i, a in enumerate(answers) if i != left_out)
        total += min(matches / 3.0, 1.0)
    return total / len(answers)


def gold_answers(row: dict) -> list[str]:
    """A row's gold answers: JSONL `answers` as a list, CSV `answers` as 'a|b|c', or `answer`."""
    several = row.get("answers")
    if isinstance(several, list):
        return [str(a) for a in several]
    if isinstance(several, str) and several.strip():
        return [a.strip() for a in several.split("|")]
    one = row.get("answer")
    return [str(one)] if one not in (None, "") else []

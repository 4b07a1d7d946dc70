//! Chinese (the default) and English. Each text is written at its call site in both
//! languages, `lang.t("计划运行", "Plan runs")`, so a page reads as it renders and no key can
//! be missing from a catalogue.

use axum::http::HeaderMap;

/// The cookie that remembers the chosen language.
pub const COOKIE: &str = "sp_lang";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Zh,
    En,
}

impl Lang {
    /// The language of a request: the `sp_lang` cookie, else Chinese.
    pub fn of(headers: &HeaderMap) -> Lang {
        super::cookie(headers, COOKIE)
            .and_then(|v| Lang::parse(&v))
            .unwrap_or_default()
    }

    pub fn parse(code: &str) -> Option<Lang> {
        match code {
            "zh" => Some(Lang::Zh),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }

    /// The `lang` attribute of the page.
    pub fn html_lang(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }

    /// The other language, for the switch in the header.
    pub fn other(self) -> Lang {
        match self {
            Lang::Zh => Lang::En,
            Lang::En => Lang::Zh,
        }
    }

    pub fn t(self, zh: &'static str, en: &'static str) -> &'static str {
        match self {
            Lang::Zh => zh,
            Lang::En => en,
        }
    }

    /// A status, kind or role word of the data, translated; unknown words pass through.
    pub fn word(self, word: &str) -> String {
        let zh = match word {
            "proposed" => "待审",
            "edited" => "已修改",
            "approved" => "已批准",
            "awaiting_finance" => "待财务审批",
            "rejected" => "已驳回",
            "released" => "已下达",
            "received" => "已收货",
            "superseded" => "已被新计划取代",
            "purchase" => "采购",
            "transfer" => "调拨",
            "queued" => "排队中",
            "running" => "运行中",
            "solved" => "完成",
            "failed" => "失败",
            "forecast" => "预测",
            "plan" => "计划",
            "pending" => "待审批",
            "admin" => "管理员",
            "planner" => "计划员",
            "station" => "服务站",
            "finance" => "财务",
            "viewer" => "只读",
            "central" => "中心库",
            "regional" => "区域中心",
            "budget" => "预算",
            "capacity" => "库容",
            "credit" => "代垫额度",
            _ => return word.to_owned(),
        };
        match self {
            Lang::Zh => zh.to_owned(),
            Lang::En => word.replace('_', " "),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_translate_and_unknown_ones_pass_through() {
        assert_eq!(Lang::Zh.word("awaiting_finance"), "待财务审批");
        assert_eq!(Lang::En.word("awaiting_finance"), "awaiting finance");
        assert_eq!(Lang::Zh.word("S0017"), "S0017");
        assert_eq!(Lang::parse("fr"), None);
        assert_eq!(Lang::Zh.other(), Lang::En);
    }
}

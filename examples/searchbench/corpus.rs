//! Generated office chat: a vocabulary of a few thousand words with a Zipf-like frequency
//! (English mostly, German compounds, accented words), a small share of Chinese and Japanese
//! messages, names and numbers, 3 to 40 words a message. Everything comes from a seeded RNG,
//! so the same seed writes the same text and the benchmark can draw its queries from it.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

/// The most frequent words, in about the order chat uses them.
const COMMON: &str = "the to i you and a we it is for of in on that this be have can with will \
    at not are do me my so just if ok please thanks from about all up get as but or by there \
    what when today now know let need our they an was some out yes no one would could should \
    also still then here more any back go new sure see think good time which how did has been \
    them your us its after before again maybe already week morning great next last soon right \
    done hi hey thank tomorrow yesterday afternoon later first only over into than too very \
    much well who why where were had his her him she he their other same each few most such \
    own off why while because until since through during without again once both between";

/// Office nouns; each also gets its plural.
const NOUNS: &str = "invoice meeting report customer project budget deadline manager contract \
    payment order delivery shipment warehouse printer laptop screen keyboard password account \
    email message call agenda minutes slide deck presentation proposal quote offer price \
    discount tax receipt expense trip hotel flight train ticket visa office desk chair room \
    kitchen coffee tea lunch cake fridge parking car bike badge door key lift elevator floor \
    building team colleague department finance sales marketing support engineering design \
    legal lawyer auditor audit review release version bug issue ticket ticket feature test \
    server database backup network router cable license subscription vendor supplier partner \
    client lead prospect campaign newsletter website page form survey feedback question answer \
    problem solution plan schedule calendar holiday vacation leave shift rota training course \
    workshop conference event party birthday gift card note document file folder spreadsheet \
    sheet table chart figure number total sum balance forecast target goal result quarter \
    month year day hour minute phone headset camera microphone charger battery adapter box \
    package parcel label stamp envelope letter notice policy rule process step task item list \
    owner status update change request approval signature copy draft template brief summary \
    reminder alarm fire drill safety cleaning window heating light plant water bottle cup \
    mug plate fork spoon napkin chocolate cookie pizza sandwich salad soup bread fruit apple \
    banana orange milk sugar snack break weekend evening night shop store product stock \
    inventory catalog brochure banner poster logo brand color font image photo video link \
    login session access permission role admin user guest visitor candidate interview offer \
    salary payroll bonus pension insurance claim refund credit debit bank transfer wire \
    cheque cash register terminal machine device tablet app update patch migration cloud \
    agency airport allowance analyst anniversary appointment architect archive assistant \
    assignment attachment attendee backlog baseline benchmark billing blueprint boardroom \
    bookkeeper breakdown briefing broker bulletin bundle cabinet canteen capacity carrier \
    cartridge certificate chairman checklist clerk coach commission committee commute \
    compliance component consultant contractor courier coverage criterion customs dashboard \
    dealer delegate deposit desktop diagram director dispatch dispute dividend domain \
    driver duty employee employer engineer entry equipment estimate exhibition expert \
    facility factory fax fee fleet forklift freight fund gateway guideline handbook \
    headline helpdesk holder housekeeping incident index initiative inspection installer \
    instruction intern inventory investor journal ledger lease lecture liability lobby \
    locker logbook loyalty mailbox maintenance margin meal memo mentor merger milestone \
    mobile module mortgage notebook objective onboarding operator outage outline overtime \
    pallet pamphlet panel parcel password payslip penalty percentage pilot pipeline \
    platform portal portfolio premium printout priority procedure producer profile profit \
    programme projector promotion prototype provider purchase quota rate ratio receptionist \
    recruiter refill region reimbursement renewal rental repair replacement reservation \
    resource retailer revenue roadmap roster router sample scanner scope secretary sector \
    segment seminar settlement shareholder shelf shipper signage sponsor staff stakeholder \
    stapler statement stationery strategy subsidiary supervisor surcharge tariff technician \
    tenant timesheet toner trainee transcript treasurer trolley tutorial upgrade utility \
    valuation van venue voucher wage warranty webinar whiteboard workflow workload";

/// Office verbs; each also gets its -s, -ed and -ing forms.
const VERBS: &str = "send check call book print sign review approve fix update finish start \
    plan schedule cancel move confirm share upload download install restart test deploy \
    order deliver ship pack pick return refund pay invoice email remind ask answer help \
    join leave visit meet discuss present prepare draft edit correct clean open close lock \
    unlock reset change add remove delete forward reply attach scan copy file sort count \
    report track follow finish submit request process handle contact invite welcome thank \
    need want look work talk walk park charge clear collect post publish launch market sell \
    buy rent hire train support solve miss expect arrive depart travel wait stay bring \
    order measure calculate estimate budget spend save store back restore export import \
    assign allocate archive audit authorize balance brief broadcast browse catalogue \
    certify clarify collaborate compile complain comply configure consolidate consult \
    convert coordinate delegate deploy describe design document download duplicate \
    escalate evaluate expand extend finalize forecast format generate highlight \
    implement improve inform inspect integrate interview invest label launch list \
    log manage merge monitor negotiate notify onboard organize outsource package \
    pause print prioritize publish purchase quote reconcile record recruit register \
    release renew repair replace reschedule resolve respond retire reorder rollout \
    scan settle ship shortlist sketch source stamp streamline subscribe summarize \
    supply survey sync tidy transfer translate troubleshoot unpack validate verify";

/// Adjectives and adverbs.
const OTHERS: &str = "urgent important quick small big late early busy free ready happy \
    sorry final late monthly weekly daily annual quarterly new old broken missing wrong \
    correct latest current previous internal external public private shared local remote \
    open closed available full empty cold warm hot fresh nice fine better best worse worst \
    easy hard simple complex short long high low red green blue black white grey quiet loud \
    probably definitely actually really quickly slowly usually often never always sometimes \
    together alone online offline upstairs downstairs outside inside nearby abroad overdue \
    pending approved rejected signed unsigned paid unpaid shipped delivered confidential";

/// German compound parts: every prefix with every suffix ("Rechnungsadresse").
const DE_PREFIXES: &str = "Rechnungs Kunden Liefer Termin Projekt Urlaubs Arbeits Abteilungs \
    Bestell Mitarbeiter Steuer Zahlungs Versand Lager Büro Vertrags Gehalts Reise Angebots \
    Sitzungs Personal Qualitäts Wartungs Schulungs Druck Post Einkaufs Verkaufs Produkt \
    Budget";
const DE_SUFFIXES: &str = "adresse nummer termin plan liste antrag bericht datum frist leiter \
    zeit kosten stelle unterlagen vorlage übersicht änderung bestätigung gruppe system \
    anfrage verwaltung abteilung leitung prüfung planung nachweis bescheinigung buchung konto";
/// German words on their own, and words with accents or other letters beyond ASCII.
const DE_AND_ACCENTED: &str = "bitte danke heute morgen Besprechung Rechnung Kunde Lieferung \
    Straße Größe Grüße schön Müller für über natürlich Mittagessen Feierabend genau gerne \
    Urlaub Gehalt Kollegin Kollege Übergabe Prüfung Gebühr Währung Kündigung café résumé \
    naïve déjà façade crème brûlée entrée fiancé señor jalapeño Zürich Malmö São Kraków Łódź \
    Ångström rôle soirée protégé décor cliché Genève Köln Düsseldorf Göteborg Århus Bogotá \
    José François Renée Chloé Zoë Jürgen Søren Björn Dvořák";

/// Chinese and Japanese office words; a CJK message is several of them without spaces.
const CJK: &str = "会议 明天 今天 报告 客户 项目 预算 经理 合同 发票 时间 问题 邮件 下午 上午 \
    讨论 安排 确认 取消 计划 部门 同事 文件 数据 销售 市场 产品 打印机 办公室 请 谢谢 我们 你们 \
    已经 需要 可以 一下 的 了 是 在 和 有 没有 吗 好 会議 資料 明日 今日 確認 お願いします よろしく \
    打ち合わせ 予定 担当 見積もり 請求書 締め切り 会議室 共有 対応 承知しました ありがとうございます \
    お疲れ様です 報告 変更 来週 午後 午前 出張 です ます を に は が の";

const NAMES: &str = "Alice Bob Carol Dave Erik Fatima Gina Hans Ingrid Kenji Lena Marco Nadia \
    Olga Pierre Quentin Rosa Sven Tomás Uwe Valérie Wei Xavier Yuki Anna Ben Clara David Emma \
    Felix Hannah Jonas Laura Lukas Mia Noah Paul Sara Tim Julia Max Sofia Leon Mei Hiro Aiko";

/// Share of messages written in Chinese or Japanese.
const CJK_SHARE: f64 = 0.03;
/// Zipf exponent of word frequency.
const WORD_SKEW: f64 = 1.0;

pub struct Corpus {
    /// Every word in frequency rank order.
    pub words: Vec<String>,
    /// Cumulative weights of `words`, for drawing by rank.
    cumulative: Vec<f64>,
    cjk: Vec<&'static str>,
    names: Vec<&'static str>,
}

impl Corpus {
    pub fn new(seed: u64) -> Corpus {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x636f_7270_7573);
        let mut words: Vec<String> = COMMON.split_whitespace().map(str::to_owned).collect();
        let mut content: Vec<String> = Vec::new();
        for noun in NOUNS.split_whitespace() {
            content.push(noun.to_owned());
            content.push(plural(noun));
        }
        for verb in VERBS.split_whitespace() {
            content.push(verb.to_owned());
            content.extend(inflections(verb));
        }
        content.extend(OTHERS.split_whitespace().map(str::to_owned));
        for prefix in DE_PREFIXES.split_whitespace() {
            for suffix in DE_SUFFIXES.split_whitespace() {
                content.push(format!("{prefix}{suffix}"));
            }
        }
        content.extend(DE_AND_ACCENTED.split_whitespace().map(str::to_owned));
        // Duplicates (a noun that is also a verb) would only add weight to one word.
        let mut seen = std::collections::HashSet::new();
        words.retain(|w| seen.insert(w.to_lowercase()));
        content.retain(|w| seen.insert(w.to_lowercase()));
        content.shuffle(&mut rng);
        words.extend(content);
        let mut total = 0.0;
        let cumulative = (0..words.len())
            .map(|rank| {
                total += 1.0 / (rank as f64 + 2.7).powf(WORD_SKEW);
                total
            })
            .collect();
        Corpus {
            words,
            cumulative,
            cjk: CJK.split_whitespace().collect(),
            names: NAMES.split_whitespace().collect(),
        }
    }

    /// A word drawn with its frequency (frequent words most of the time).
    pub fn frequent_word(&self, rng: &mut impl Rng) -> &str {
        let total = self.cumulative.last().copied().unwrap_or(0.0);
        let at = rng.random::<f64>() * total;
        let rank = self.cumulative.partition_point(|&c| c < at);
        &self.words[rank.min(self.words.len() - 1)]
    }

    /// Any word of the vocabulary, all equally likely (rare words most of the time).
    pub fn any_word(&self, rng: &mut impl Rng) -> &str {
        &self.words[rng.random_range(0..self.words.len())]
    }

    /// One chat message.
    pub fn message(&self, rng: &mut impl Rng) -> String {
        if rng.random_bool(CJK_SHARE) {
            let count = rng.random_range(2..=12);
            let mut text: String = (0..count)
                .map(|_| self.cjk[rng.random_range(0..self.cjk.len())])
                .collect();
            text.push(if rng.random_bool(0.2) { '？' } else { '。' });
            return text;
        }
        // 3 to 40 words, most messages short.
        let length = 3 + (37.0 * rng.random::<f64>().powi(3)) as usize;
        let mut text = String::new();
        for i in 0..length {
            if i > 0 {
                text.push(if rng.random_bool(0.06) { ',' } else { ' ' });
                if text.ends_with(',') {
                    text.push(' ');
                }
            }
            let roll = rng.random::<f64>();
            if roll < 0.02 {
                text.push_str(self.names[rng.random_range(0..self.names.len())]);
            } else if roll < 0.035 {
                text.push_str(&number(rng));
            } else if roll < 0.04 {
                text.push_str(self.cjk[rng.random_range(0..self.cjk.len())]);
            } else {
                let word = self.frequent_word(rng);
                if i == 0 {
                    let mut chars = word.chars();
                    if let Some(first) = chars.next() {
                        text.extend(first.to_uppercase());
                        text.push_str(chars.as_str());
                    }
                } else {
                    text.push_str(word);
                }
            }
        }
        text.push(match rng.random_range(0..10) {
            0..=5 => '.',
            6 | 7 => '?',
            _ => '!',
        });
        text
    }
}

fn plural(noun: &str) -> String {
    if noun.ends_with('s') || noun.ends_with('x') || noun.ends_with("ch") || noun.ends_with("sh") {
        format!("{noun}es")
    } else if noun.ends_with('y') && !noun.ends_with("ay") && !noun.ends_with("ey") {
        format!("{}ies", &noun[..noun.len() - 1])
    } else {
        format!("{noun}s")
    }
}

/// -s, -ed and -ing, spelled simply ("restart": "restarts", "restarted", "restarting").
fn inflections(verb: &str) -> [String; 3] {
    let stem = verb.strip_suffix('e').unwrap_or(verb);
    [plural(verb), format!("{stem}ed"), format!("{stem}ing")]
}

/// An invoice number, a time, an amount or a date.
fn number(rng: &mut impl Rng) -> String {
    match rng.random_range(0..4) {
        0 => format!("#{}", rng.random_range(10_000..100_000)),
        1 => format!(
            "{}:{:02}",
            rng.random_range(7..19),
            15 * rng.random_range(0..4)
        ),
        2 => format!(
            "{}.{:02}",
            rng.random_range(1..5000),
            rng.random_range(0..100)
        ),
        _ => format!(
            "2026-{:02}-{:02}",
            rng.random_range(1..=12),
            rng.random_range(1..=28)
        ),
    }
}

//! Product lines, equipment models, suppliers and parts, with the failure process behind
//! them: every functional part ("slot") has a rate of failure events per usage-unit
//! machine-month on each model it fits and a mean lot size per event. A slot is sold under
//! one part code, or two when it is superseded inside the history.

use rand::distributions::{Distribution, WeightedIndex};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::LogNormal;

use super::calendar::YearMonth;
use super::{stream, GenerateConfig, Stream};
use crate::catalog::Criticality;
use crate::history::FaultCategory;

/// A product line: code (the part code's first segment), Chinese name, models, failure
/// events per usage-unit machine-month summed over all its parts, and how strongly its
/// usage follows the climate (exponent on the regional profile).
pub struct LineSpec {
    pub code: &'static str,
    pub name: &'static str,
    pub models: &'static [&'static str],
    pub event_rate: f64,
    pub seasonality: f64,
    pub share_of_parts: f64,
    /// Wear parts only this line has: (name, uom).
    pub wear_nouns: &'static [(&'static str, &'static str)],
}

/// In the order of `geography::Region::line_weights`.
pub static LINES: [LineSpec; 7] = [
    LineSpec {
        code: "PT",
        name: "泵车",
        models: &["PT49", "PT56", "PT62", "PT66"],
        event_rate: 1.6,
        seasonality: 1.0,
        share_of_parts: 0.22,
        wear_nouns: &[
            ("眼镜板", "件"),
            ("切割环", "件"),
            ("输送管", "根"),
            ("弯管", "件"),
            ("混凝土活塞", "件"),
        ],
    },
    LineSpec {
        code: "CP",
        name: "拖泵",
        models: &["CP60", "CP80", "CP110"],
        event_rate: 1.3,
        seasonality: 1.0,
        share_of_parts: 0.14,
        wear_nouns: &[
            ("眼镜板", "件"),
            ("切割环", "件"),
            ("混凝土活塞", "件"),
            ("搅拌叶片", "件"),
        ],
    },
    LineSpec {
        code: "TC",
        name: "塔机",
        models: &["TC5610", "TC6015", "TC7020"],
        event_rate: 0.6,
        seasonality: 0.7,
        share_of_parts: 0.16,
        wear_nouns: &[("钢丝绳", "根"), ("滑轮", "件"), ("制动片", "套")],
    },
    LineSpec {
        code: "RR",
        name: "压路机",
        models: &["RR18", "RR22", "RR26"],
        event_rate: 0.8,
        seasonality: 1.3,
        share_of_parts: 0.11,
        wear_nouns: &[("钢轮刮板", "件"), ("振动轴承", "件"), ("减振块", "件")],
    },
    LineSpec {
        code: "PV",
        name: "摊铺机",
        models: &["PV7", "PV9", "PV12"],
        event_rate: 1.0,
        seasonality: 1.3,
        share_of_parts: 0.12,
        wear_nouns: &[("熨平板底板", "件"), ("螺旋叶片", "件"), ("刮板链", "根")],
    },
    LineSpec {
        code: "MM",
        name: "铣刨机",
        models: &["MM1000", "MM2000"],
        event_rate: 1.2,
        seasonality: 1.2,
        share_of_parts: 0.12,
        wear_nouns: &[("铣刨刀头", "件"), ("刀座", "件"), ("输送带", "根")],
    },
    LineSpec {
        code: "HD",
        name: "水平定向钻",
        models: &["HD180", "HD360"],
        event_rate: 0.9,
        seasonality: 0.9,
        share_of_parts: 0.13,
        wear_nouns: &[("钻杆", "根"), ("钻头", "件"), ("泥浆泵活塞", "件")],
    },
];

/// The system segment of a part code; it decides the fault category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum System {
    Ele,
    Hyd,
    Mec,
    Oth,
}

impl System {
    pub const ALL: [System; 4] = [System::Ele, System::Hyd, System::Mec, System::Oth];

    pub fn code(self) -> &'static str {
        match self {
            System::Ele => "ELE",
            System::Hyd => "HYD",
            System::Mec => "MEC",
            System::Oth => "OTH",
        }
    }

    pub fn category(self) -> FaultCategory {
        match self {
            System::Ele => FaultCategory::Electrical,
            System::Hyd => FaultCategory::Hydraulic,
            System::Mec => FaultCategory::Mechanical,
            System::Oth => FaultCategory::Other,
        }
    }

    /// Parts every line has that are not wear parts: (name, uom).
    fn nouns(self) -> &'static [(&'static str, &'static str)] {
        match self {
            System::Ele => &[
                ("控制器", "件"),
                ("显示屏", "件"),
                ("遥控器", "件"),
                ("压力传感器", "件"),
                ("位移传感器", "件"),
                ("主线束", "根"),
                ("继电器", "件"),
                ("电磁阀线圈", "件"),
                ("启动马达", "件"),
                ("发电机", "件"),
            ],
            System::Hyd => &[
                ("主油泵", "件"),
                ("液压马达", "件"),
                ("多路阀", "件"),
                ("主油缸", "件"),
                ("溢流阀", "件"),
                ("换向阀", "件"),
                ("蓄能器", "件"),
                ("液压油散热器", "件"),
                ("平衡阀", "件"),
            ],
            System::Mec => &[
                ("减速机", "件"),
                ("回转支承", "件"),
                ("轴承", "件"),
                ("齿轮", "件"),
                ("传动轴", "件"),
                ("联轴器", "件"),
                ("销轴", "件"),
                ("支腿油缸座", "件"),
                ("发动机皮带", "根"),
            ],
            System::Oth => &[
                ("铭牌", "件"),
                ("驾驶室座椅", "件"),
                ("门锁", "件"),
                ("后视镜", "件"),
                ("前挡风玻璃", "件"),
                ("油箱盖", "件"),
                ("工具箱", "套"),
            ],
        }
    }

    /// Wear parts every line has: filters, seals, hoses.
    fn wear_nouns(self) -> &'static [(&'static str, &'static str)] {
        match self {
            System::Hyd => &[
                ("密封件套件", "套"),
                ("高压胶管", "根"),
                ("液压油滤芯", "件"),
            ],
            System::Oth => &[("空气滤芯", "件"), ("柴油滤芯", "件"), ("机油滤芯", "件")],
            System::Ele => &[("保险丝组", "套")],
            System::Mec => &[],
        }
    }
}

pub struct Model {
    pub code: &'static str,
    pub line: usize,
    /// First month it can be delivered; `None` = on sale before the history.
    pub launch: Option<YearMonth>,
    /// Failure events per usage-unit machine-month over all parts fitting it.
    pub event_rate: f64,
}

/// A functional part: what fails. Its failure events per usage-unit machine-month on each
/// model it fits; each event replaces `1 + Poisson(lot_mean - 1)` units.
pub struct Slot {
    pub line: usize,
    pub system: System,
    pub criticality: Criticality,
    pub lot_mean: f64,
    pub rates: Vec<(usize, f64)>,
    pub part: usize,
    /// The successor part and the month from which it is issued instead.
    pub successor: Option<(usize, YearMonth)>,
}

impl Slot {
    /// The part issued for this slot in `month`.
    pub fn part_at(&self, month: YearMonth) -> usize {
        match self.successor {
            Some((next, from)) if month >= from => next,
            _ => self.part,
        }
    }
}

pub struct Part {
    pub code: String,
    pub name: String,
    pub uom: &'static str,
    pub slot: usize,
    pub wear: bool,
    pub volume_l: f64,
    pub weight_kg: f64,
    pub supplier: usize,
    pub lead_time_days: u32,
    pub moq: u32,
    pub pack_size: u32,
    pub cost_fen: i64,
    pub dealer_markup: f64,
    pub retail_markup: f64,
    pub prices_from: YearMonth,
    /// A later price change: month and factor on all three prices.
    pub price_change: Option<(YearMonth, f64)>,
    pub replaced: Option<(usize, YearMonth)>,
}

pub struct Supplier {
    pub code: String,
    pub name: String,
    pub system: System,
    pub lead_time_days: u32,
}

/// The failure events of one model: which slots, and a sampler over them by rate.
pub struct ModelParts {
    pub slots: Vec<usize>,
    pub picker: Option<WeightedIndex<f64>>,
    pub total: f64,
}

pub struct Catalog {
    pub lines: &'static [LineSpec],
    pub models: Vec<Model>,
    pub suppliers: Vec<Supplier>,
    pub slots: Vec<Slot>,
    pub parts: Vec<Part>,
    pub per_model: Vec<ModelParts>,
}

/// Share of part codes that are successors of another part.
const SUPERSEDED_PERCENT: usize = 3;

pub fn build(config: &GenerateConfig) -> Catalog {
    let mut rng = stream(config.seed, Stream::Catalog, 0);
    let models = build_models(config, &mut rng);
    let suppliers = build_suppliers(config.parts, &mut rng);
    let successors = config.parts * SUPERSEDED_PERCENT / 100;
    let slot_count = config.parts - successors;
    let mut slots = Vec::with_capacity(slot_count);
    let mut parts = Vec::with_capacity(config.parts);
    for (line, count) in split_by_share(slot_count).into_iter().enumerate() {
        build_line(
            line, count, &models, &suppliers, config, &mut slots, &mut parts, &mut rng,
        );
    }
    supersede(successors, config, &mut slots, &mut parts, &mut rng);
    weights_to_rates(&models, &mut slots);
    let per_model = index_by_model(&models, &slots);
    Catalog {
        lines: &LINES,
        models,
        suppliers,
        slots,
        parts,
        per_model,
    }
}

/// The last model of a line with three or more is launched 40 % into the history.
fn build_models(config: &GenerateConfig, rng: &mut ChaCha8Rng) -> Vec<Model> {
    let launch = config.start.plus(config.history_months() as i32 * 2 / 5);
    let mut models = Vec::new();
    for (line, spec) in LINES.iter().enumerate() {
        for (i, &code) in spec.models.iter().enumerate() {
            let late = spec.models.len() >= 3 && i + 1 == spec.models.len();
            models.push(Model {
                code,
                line,
                launch: late.then_some(launch),
                event_rate: spec.event_rate * rng.gen_range(0.85..1.15),
            });
        }
    }
    models
}

fn build_suppliers(parts: usize, rng: &mut ChaCha8Rng) -> Vec<Supplier> {
    const CITIES: [&str; 20] = [
        "长沙", "株洲", "徐州", "宁波", "无锡", "常州", "苏州", "上海", "济南", "柳州", "厦门",
        "佛山", "温州", "台州", "泉州", "潍坊", "烟台", "武汉", "郑州", "成都",
    ];
    let count = (parts / 25).clamp(8, 400);
    (0..count)
        .map(|i| {
            let system = System::ALL[i % 4];
            let core = match system {
                System::Ele => ["电气", "电子", "传感技术", "自动化"],
                System::Hyd => ["液压", "流体动力", "液压件", "密封科技"],
                System::Mec => ["机械", "精密机械", "重工配件", "传动"],
                System::Oth => ["工贸", "实业", "汽配", "橡塑"],
            }[(i / 4) % 4];
            let city = CITIES[(i * 7 + i / 20) % CITIES.len()];
            let imported = rng.gen_bool(0.15);
            let (name, lead_time_days) = if imported {
                (
                    format!("{city}{core}进出口有限公司"),
                    rng.gen_range(60..=120),
                )
            } else {
                (format!("{city}{core}有限公司"), rng.gen_range(10..=45))
            };
            Supplier {
                code: format!("SUP{:04}", i + 1),
                name,
                system,
                lead_time_days,
            }
        })
        .collect()
}

/// Splits `total` slots over the lines by `share_of_parts`, at least one each.
fn split_by_share(total: usize) -> Vec<usize> {
    let mut counts: Vec<usize> = LINES
        .iter()
        .map(|l| ((l.share_of_parts * total as f64).floor() as usize).max(1))
        .collect();
    let mut line = 0;
    while counts.iter().sum::<usize>() < total {
        counts[line % LINES.len()] += 1;
        line += 1;
    }
    while counts.iter().sum::<usize>() > total {
        if let Some(max) = (0..counts.len()).max_by_key(|&i| (counts[i], usize::MAX - i)) {
            counts[max] -= 1;
        }
    }
    counts
}

/// What kind of part a slot is, before it gets a code.
struct Kind {
    system: System,
    noun: &'static str,
    uom: &'static str,
    wear: bool,
}

fn pick_kind(line: usize, rng: &mut ChaCha8Rng) -> Kind {
    let wear = rng.gen_bool(0.25);
    if wear && rng.gen_bool(0.6) {
        let (noun, uom) = LINES[line].wear_nouns[rng.gen_range(0..LINES[line].wear_nouns.len())];
        return Kind {
            system: System::Mec,
            noun,
            uom,
            wear,
        };
    }
    let weights = if wear {
        [1.0, 3.0, 0.0, 3.0]
    } else {
        [2.5, 3.0, 3.5, 1.0]
    };
    let system = match WeightedIndex::new(weights) {
        Ok(pick) => System::ALL[pick.sample(rng)],
        Err(_) => System::Mec,
    };
    let nouns = if wear {
        system.wear_nouns()
    } else {
        system.nouns()
    };
    let (noun, uom) = nouns[rng.gen_range(0..nouns.len())];
    Kind {
        system,
        noun,
        uom,
        wear,
    }
}

fn pick_criticality(kind: &Kind, rng: &mut ChaCha8Rng) -> Criticality {
    let weights = match (kind.wear, kind.system) {
        (true, _) => [0.1, 0.5, 0.4],
        (false, System::Hyd) => [0.3, 0.4, 0.3],
        (false, System::Ele) => [0.25, 0.4, 0.35],
        (false, System::Mec) => [0.15, 0.4, 0.45],
        (false, System::Oth) => [0.02, 0.18, 0.8],
    };
    let pick = WeightedIndex::new(weights)
        .map(|w| w.sample(rng))
        .unwrap_or(2);
    [Criticality::A, Criticality::B, Criticality::C][pick]
}

#[allow(clippy::too_many_arguments)]
fn build_line(
    line: usize,
    count: usize,
    models: &[Model],
    suppliers: &[Supplier],
    config: &GenerateConfig,
    slots: &mut Vec<Slot>,
    parts: &mut Vec<Part>,
    rng: &mut ChaCha8Rng,
) {
    let line_models: Vec<usize> = (0..models.len())
        .filter(|&m| models[m].line == line)
        .collect();
    let mut serials = [0u32; 4];
    for s in &mut serials {
        *s = rng.gen_range(100..1000);
    }
    for i in 0..count {
        let kind = pick_kind(line, rng);
        let criticality = pick_criticality(&kind, rng);
        // The line's first slot fits all its models so that every model has parts.
        let fits = if i == 0 || rng.gen_bool(0.5) {
            line_models.clone()
        } else {
            let k = rng.gen_range(1..line_models.len().max(2));
            let mut chosen = rand::seq::index::sample(rng, line_models.len(), k).into_vec();
            chosen.sort_unstable();
            chosen.into_iter().map(|j| line_models[j]).collect()
        };
        // Wear parts fail often; most other parts rarely (heavy-tailed weights).
        let weight = if kind.wear {
            lognormal(rng, 8.0, 0.8)
        } else {
            lognormal(rng, 1.0, 1.0)
        };
        let lot_mean = if kind.wear {
            f64::from(rng.gen_range(3..=10)) / 2.0
        } else if rng.gen_bool(0.8) {
            1.0
        } else {
            rng.gen_range(1.1..1.5)
        };
        let serial = &mut serials[kind.system as usize];
        *serial += rng.gen_range(1..=20);
        let code = format!("{}-{}-{:06}", LINES[line].code, kind.system.code(), serial);
        let part = make_part(
            code,
            &kind,
            criticality,
            slots.len(),
            suppliers,
            config,
            rng,
        );
        slots.push(Slot {
            line,
            system: kind.system,
            criticality,
            lot_mean,
            rates: fits.into_iter().map(|m| (m, weight)).collect(),
            part: parts.len(),
            successor: None,
        });
        parts.push(part);
    }
}

fn lognormal(rng: &mut ChaCha8Rng, median: f64, sigma: f64) -> f64 {
    LogNormal::new(median.ln(), sigma).map_or(median, |d| d.sample(rng))
}

fn make_part(
    code: String,
    kind: &Kind,
    criticality: Criticality,
    slot: usize,
    suppliers: &[Supplier],
    config: &GenerateConfig,
    rng: &mut ChaCha8Rng,
) -> Part {
    const SERIES: [&str; 12] = ["A", "B", "C", "D", "E", "F", "G", "H", "K", "M", "S", "T"];
    let line = &LINES[code_line(&code)];
    let name = format!(
        "{}{} {}{:03}",
        line.name,
        kind.noun,
        SERIES[rng.gen_range(0..12)],
        rng.gen_range(10..1000)
    );
    let own: Vec<usize> = (0..suppliers.len())
        .filter(|&s| suppliers[s].system == kind.system)
        .collect();
    let supplier = if own.is_empty() {
        rng.gen_range(0..suppliers.len())
    } else {
        own[rng.gen_range(0..own.len())]
    };
    let lead_time_days =
        (suppliers[supplier].lead_time_days as i64 + rng.gen_range(-3..=7)).max(3) as u32;
    let (pack_size, moq) = pack_and_moq(kind.wear, criticality, rng);
    let base_cny = match criticality {
        Criticality::A => 2500.0,
        Criticality::B => 450.0,
        Criticality::C => 60.0,
    } * if kind.wear { 0.5 } else { 1.0 };
    let cost_fen = ((lognormal(rng, base_cny, 0.7) * 100.0).round() as i64).max(100);
    let volume_l = lognormal(rng, if kind.wear { 2.0 } else { 4.0 }, 1.0);
    let price_change = rng.gen_bool(0.1).then(|| {
        let month = config
            .start
            .plus(rng.gen_range(1..config.history_months() as i32));
        (month, rng.gen_range(1.03..1.12))
    });
    Part {
        code,
        name,
        uom: kind.uom,
        slot,
        wear: kind.wear,
        volume_l: round2(volume_l),
        weight_kg: round2(volume_l * rng.gen_range(0.3..3.0)),
        supplier,
        lead_time_days,
        moq,
        pack_size,
        cost_fen,
        dealer_markup: rng.gen_range(1.2..1.4),
        retail_markup: rng.gen_range(1.15..1.35),
        prices_from: config.start.plus(-12),
        price_change,
        replaced: None,
    }
}

fn code_line(code: &str) -> usize {
    let prefix = code.split('-').next().unwrap_or("");
    LINES.iter().position(|l| l.code == prefix).unwrap_or(0)
}

fn round2(x: f64) -> f64 {
    ((x * 100.0).round() / 100.0).max(0.01)
}

/// Wear parts come in packs and are bought in several packs; expensive A parts one by one.
fn pack_and_moq(wear: bool, criticality: Criticality, rng: &mut ChaCha8Rng) -> (u32, u32) {
    let pack = if wear {
        [1, 2, 5, 10][rng.gen_range(0..4)]
    } else if criticality == Criticality::A {
        1
    } else {
        [1, 1, 2, 5][rng.gen_range(0..4)]
    };
    let multiple = if wear {
        [1, 2, 5][rng.gen_range(0..3)]
    } else {
        rng.gen_range(1..=2)
    };
    let moq = if criticality == Criticality::A && !wear {
        1
    } else {
        pack * multiple
    };
    (pack, moq)
}

/// `count` distinct slots get a successor code (`-B` revision), issued from a month inside
/// the history; the successor costs 0–15 % more.
fn supersede(
    count: usize,
    config: &GenerateConfig,
    slots: &mut [Slot],
    parts: &mut Vec<Part>,
    rng: &mut ChaCha8Rng,
) {
    let mut chosen = rand::seq::index::sample(rng, slots.len(), count).into_vec();
    chosen.sort_unstable();
    for s in chosen {
        let from = config
            .start
            .plus(rng.gen_range(1..config.history_months() as i32));
        let old = &parts[slots[s].part];
        let next = Part {
            code: format!("{}-B", old.code),
            name: format!("{}(改进型)", old.name),
            uom: old.uom,
            slot: s,
            wear: old.wear,
            volume_l: old.volume_l,
            weight_kg: old.weight_kg,
            supplier: old.supplier,
            lead_time_days: old.lead_time_days,
            moq: old.moq,
            pack_size: old.pack_size,
            cost_fen: (old.cost_fen as f64 * rng.gen_range(1.0..1.15)).round() as i64,
            dealer_markup: old.dealer_markup,
            retail_markup: old.retail_markup,
            prices_from: from.plus(-1),
            price_change: None,
            replaced: None,
        };
        let next_index = parts.len();
        parts[slots[s].part].replaced = Some((next_index, from));
        slots[s].successor = Some((next_index, from));
        parts.push(next);
    }
}

/// Turns slot weights into rates: a model's failure events (its `event_rate`) are shared
/// among the slots fitting it in proportion to their weights.
fn weights_to_rates(models: &[Model], slots: &mut [Slot]) {
    let mut sums = vec![0.0; models.len()];
    for slot in slots.iter() {
        for &(m, weight) in &slot.rates {
            sums[m] += weight;
        }
    }
    for slot in slots.iter_mut() {
        for (m, rate) in slot.rates.iter_mut() {
            *rate = models[*m].event_rate * *rate / sums[*m];
        }
    }
}

fn index_by_model(models: &[Model], slots: &[Slot]) -> Vec<ModelParts> {
    let mut lists: Vec<Vec<(usize, f64)>> = vec![Vec::new(); models.len()];
    for (s, slot) in slots.iter().enumerate() {
        for &(m, rate) in &slot.rates {
            lists[m].push((s, rate));
        }
    }
    lists
        .into_iter()
        .map(|list| {
            let rates: Vec<f64> = list.iter().map(|(_, r)| *r).collect();
            ModelParts {
                slots: list.iter().map(|(s, _)| *s).collect(),
                picker: WeightedIndex::new(&rates).ok(),
                total: rates.iter().sum(),
            }
        })
        .collect()
}

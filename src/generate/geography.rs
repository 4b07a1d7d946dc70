//! The network's places: one central warehouse, the nine regional centres of DESIGN §1,
//! stations spread over real cities, the lanes between them, and each region's seasonal
//! usage of each equipment model.

use std::collections::BTreeMap;

use rand::distributions::{Distribution, WeightedIndex};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::Normal;

use super::calendar::YearMonth;
use super::catalog::Catalog;
use super::{stream, GenerateConfig, Stream};

#[derive(Debug, Clone, Copy)]
pub struct City {
    pub name: &'static str,
    pub lat: f64,
    pub lon: f64,
    pub key: bool,
    pub remote: bool,
}

const fn city(name: &'static str, lat: f64, lon: f64, key: bool, remote: bool) -> City {
    City {
        name,
        lat,
        lon,
        key,
        remote,
    }
}

/// A region: its centre's city (the first of `cities`), its share of the stations, how much
/// of each product line it buys (in `catalog::LINES` order) and its climate's monthly usage
/// (January first, before normalising to a mean of 1).
pub struct Region {
    pub name: &'static str,
    pub cities: &'static [City],
    pub station_share: f64,
    pub line_weights: [f64; 7],
    pub climate: [f64; 12],
}

/// Winter stop in the north, rainy-season dip in the south, the Spring Festival everywhere.
pub static REGIONS: [Region; 9] = [
    Region {
        name: "西北",
        station_share: 0.08,
        line_weights: [1.0, 0.6, 0.8, 1.2, 1.0, 0.8, 0.6],
        climate: [
            0.25, 0.3, 0.8, 1.2, 1.35, 1.4, 1.35, 1.4, 1.35, 1.25, 0.8, 0.3,
        ],
        cities: &[
            city("西安", 34.34, 108.94, true, false),
            city("兰州", 36.06, 103.83, true, false),
            city("银川", 38.49, 106.23, true, false),
            city("西宁", 36.62, 101.78, true, false),
            city("乌鲁木齐", 43.83, 87.62, true, true),
            city("宝鸡", 34.36, 107.24, false, false),
            city("榆林", 38.29, 109.74, false, false),
            city("延安", 36.59, 109.49, false, false),
            city("天水", 34.58, 105.72, false, false),
            city("喀什", 39.47, 75.99, false, true),
            city("库尔勒", 41.76, 86.15, false, true),
            city("张掖", 38.93, 100.45, false, true),
        ],
    },
    Region {
        name: "东北",
        station_share: 0.09,
        line_weights: [1.0, 0.6, 0.9, 1.0, 0.9, 0.8, 0.4],
        climate: [
            0.1, 0.15, 0.45, 1.1, 1.45, 1.55, 1.5, 1.55, 1.45, 1.25, 0.6, 0.15,
        ],
        cities: &[
            city("沈阳", 41.80, 123.43, true, false),
            city("大连", 38.91, 121.61, true, false),
            city("长春", 43.82, 125.32, true, false),
            city("哈尔滨", 45.80, 126.53, true, false),
            city("吉林", 43.84, 126.55, false, false),
            city("鞍山", 41.11, 122.99, false, false),
            city("大庆", 46.59, 125.10, false, false),
            city("齐齐哈尔", 47.35, 123.92, false, false),
            city("锦州", 41.10, 121.13, false, false),
            city("牡丹江", 44.55, 129.63, false, true),
            city("佳木斯", 46.80, 130.32, false, true),
            city("黑河", 50.25, 127.53, false, true),
        ],
    },
    Region {
        name: "川渝",
        station_share: 0.11,
        line_weights: [1.3, 0.9, 1.1, 0.7, 0.6, 0.6, 0.8],
        climate: [
            0.95, 0.6, 1.15, 1.2, 1.05, 0.8, 0.75, 0.8, 0.95, 1.15, 1.2, 1.1,
        ],
        cities: &[
            city("成都", 30.57, 104.07, true, false),
            city("重庆", 29.56, 106.55, true, false),
            city("绵阳", 31.47, 104.68, false, false),
            city("宜宾", 28.77, 104.63, false, false),
            city("南充", 30.84, 106.11, false, false),
            city("泸州", 28.87, 105.44, false, false),
            city("乐山", 29.55, 103.77, false, false),
            city("达州", 31.21, 107.47, false, false),
            city("万州", 30.81, 108.41, false, false),
            city("西昌", 27.89, 102.26, false, true),
            city("康定", 30.05, 101.96, false, true),
            city("拉萨", 29.65, 91.14, true, true),
        ],
    },
    Region {
        name: "河南安徽",
        station_share: 0.12,
        line_weights: [1.2, 0.8, 1.0, 1.0, 0.9, 0.8, 0.7],
        climate: [
            0.55, 0.45, 1.0, 1.2, 1.2, 1.15, 1.05, 1.1, 1.2, 1.25, 1.05, 0.7,
        ],
        cities: &[
            city("郑州", 34.75, 113.63, true, false),
            city("合肥", 31.82, 117.23, true, false),
            city("洛阳", 34.62, 112.45, false, false),
            city("新乡", 35.30, 113.93, false, false),
            city("南阳", 33.00, 112.53, false, false),
            city("信阳", 32.15, 114.09, false, false),
            city("商丘", 34.41, 115.66, false, false),
            city("芜湖", 31.35, 118.43, false, false),
            city("蚌埠", 32.92, 117.39, false, false),
            city("阜阳", 32.89, 115.81, false, false),
            city("安庆", 30.54, 117.06, false, false),
            city("六安", 31.74, 116.52, false, false),
        ],
    },
    Region {
        name: "湖北湖南",
        station_share: 0.13,
        line_weights: [1.3, 1.0, 1.1, 0.8, 0.8, 0.7, 0.8],
        climate: [
            0.9, 0.55, 1.15, 1.2, 0.95, 0.7, 0.8, 1.05, 1.2, 1.25, 1.2, 1.05,
        ],
        cities: &[
            city("武汉", 30.59, 114.31, true, false),
            city("长沙", 28.23, 112.94, true, false),
            city("宜昌", 30.69, 111.29, false, false),
            city("襄阳", 32.01, 112.12, false, false),
            city("十堰", 32.63, 110.80, false, false),
            city("株洲", 27.83, 113.13, false, false),
            city("衡阳", 26.89, 112.57, false, false),
            city("岳阳", 29.36, 113.13, false, false),
            city("常德", 29.03, 111.70, false, false),
            city("怀化", 27.55, 109.98, false, false),
            city("张家界", 29.12, 110.48, false, false),
            city("恩施", 30.27, 109.49, false, true),
        ],
    },
    Region {
        name: "江西福建",
        station_share: 0.10,
        line_weights: [1.1, 0.9, 1.0, 0.8, 0.7, 0.6, 0.9],
        climate: [
            0.95, 0.6, 1.15, 1.15, 0.85, 0.65, 0.75, 1.0, 1.15, 1.25, 1.25, 1.1,
        ],
        cities: &[
            city("南昌", 28.68, 115.86, true, false),
            city("福州", 26.07, 119.30, true, false),
            city("厦门", 24.48, 118.09, true, false),
            city("赣州", 25.83, 114.93, false, false),
            city("九江", 29.71, 116.00, false, false),
            city("上饶", 28.45, 117.94, false, false),
            city("宜春", 27.81, 114.42, false, false),
            city("吉安", 27.11, 114.99, false, false),
            city("泉州", 24.87, 118.68, false, false),
            city("漳州", 24.51, 117.65, false, false),
            city("龙岩", 25.08, 117.02, false, false),
            city("三明", 26.26, 117.64, false, true),
        ],
    },
    Region {
        name: "浙江苏南",
        station_share: 0.13,
        line_weights: [1.2, 1.0, 1.3, 0.7, 0.8, 1.0, 1.1],
        climate: [
            0.95, 0.55, 1.15, 1.2, 1.0, 0.7, 0.75, 1.0, 1.15, 1.25, 1.25, 1.1,
        ],
        cities: &[
            city("杭州", 30.27, 120.16, true, false),
            city("南京", 32.06, 118.80, true, false),
            city("苏州", 31.30, 120.59, true, false),
            city("宁波", 29.87, 121.54, true, false),
            city("无锡", 31.49, 120.31, false, false),
            city("常州", 31.81, 119.97, false, false),
            city("温州", 28.00, 120.67, false, false),
            city("绍兴", 30.00, 120.58, false, false),
            city("金华", 29.08, 119.65, false, false),
            city("台州", 28.66, 121.42, false, false),
            city("湖州", 30.89, 120.09, false, false),
            city("丽水", 28.45, 119.92, false, false),
        ],
    },
    Region {
        name: "广东广西海南",
        station_share: 0.13,
        line_weights: [1.3, 1.0, 1.3, 0.7, 0.7, 0.8, 1.2],
        climate: [
            1.05, 0.6, 1.2, 1.15, 0.75, 0.6, 0.65, 0.85, 1.1, 1.3, 1.3, 1.25,
        ],
        cities: &[
            city("广州", 23.13, 113.26, true, false),
            city("深圳", 22.54, 114.06, true, false),
            city("南宁", 22.82, 108.37, true, false),
            city("海口", 20.04, 110.20, true, false),
            city("佛山", 23.02, 113.12, false, false),
            city("东莞", 23.02, 113.75, false, false),
            city("柳州", 24.33, 109.41, false, false),
            city("桂林", 25.27, 110.29, false, false),
            city("湛江", 21.27, 110.36, false, false),
            city("汕头", 23.35, 116.68, false, false),
            city("三亚", 18.25, 109.51, false, true),
            city("百色", 23.90, 106.62, false, true),
        ],
    },
    Region {
        name: "山东河北",
        station_share: 0.11,
        line_weights: [1.1, 0.8, 1.0, 1.1, 1.0, 0.9, 0.7],
        climate: [
            0.35, 0.35, 0.9, 1.2, 1.3, 1.3, 1.2, 1.25, 1.3, 1.3, 0.95, 0.45,
        ],
        cities: &[
            city("济南", 36.65, 117.12, true, false),
            city("青岛", 36.07, 120.38, true, false),
            city("石家庄", 38.04, 114.51, true, false),
            city("唐山", 39.63, 118.18, false, false),
            city("烟台", 37.46, 121.45, false, false),
            city("潍坊", 36.71, 119.16, false, false),
            city("临沂", 35.10, 118.36, false, false),
            city("保定", 38.87, 115.46, false, false),
            city("邯郸", 36.63, 114.54, false, false),
            city("沧州", 38.30, 116.84, false, false),
            city("张家口", 40.77, 114.88, false, true),
            city("承德", 40.95, 117.96, false, true),
        ],
    },
];

pub const CENTRAL_CODE: &str = "C01";
pub const CENTRAL_CITY: City = city("长沙", 28.23, 112.94, true, false);

pub fn regional_code(region: usize) -> String {
    format!("R{:02}", region + 1)
}

/// A service station as generated.
#[derive(Debug, Clone)]
pub struct Station {
    pub code: String,
    pub name: String,
    pub region: usize,
    pub city: &'static str,
    pub lat: f64,
    pub lon: f64,
    pub key_city: bool,
    pub remote: bool,
    /// The month the station opened when that is inside the history; `None` = open before.
    pub opened: Option<YearMonth>,
}

/// Great-circle distance in km.
pub fn distance_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (lat1, lon1) = (a.0.to_radians(), a.1.to_radians());
    let (lat2, lon2) = (b.0.to_radians(), b.1.to_radians());
    let h = ((lat2 - lat1) / 2.0).sin().powi(2)
        + lat1.cos() * lat2.cos() * ((lon2 - lon1) / 2.0).sin().powi(2);
    2.0 * 6371.0 * h.sqrt().asin()
}

/// Splits `total` over the regions by share, largest remainders first (ties by region order).
fn stations_per_region(total: usize) -> Vec<usize> {
    let exact: Vec<f64> = REGIONS
        .iter()
        .map(|r| r.station_share * total as f64)
        .collect();
    let sum: f64 = REGIONS.iter().map(|r| r.station_share).sum();
    let exact: Vec<f64> = exact.iter().map(|x| x / sum).collect();
    let mut counts: Vec<usize> = exact.iter().map(|x| x.floor() as usize).collect();
    let mut order: Vec<usize> = (0..REGIONS.len()).collect();
    order.sort_by(|&a, &b| {
        let (ra, rb) = (exact[a] - exact[a].floor(), exact[b] - exact[b].floor());
        rb.total_cmp(&ra).then(a.cmp(&b))
    });
    let missing = total - counts.iter().sum::<usize>();
    for &region in order.iter().take(missing) {
        counts[region] += 1;
    }
    counts
}

/// Places the stations: key cities get more stations, remote ones fewer; a second station
/// in a city sits a few km from the first. A few stations open late in the history.
pub fn build_stations(config: &GenerateConfig) -> Vec<Station> {
    let mut rng = stream(config.seed, Stream::Stations, 0);
    let mut stations = Vec::with_capacity(config.stations);
    for (region, count) in stations_per_region(config.stations).into_iter().enumerate() {
        let cities = REGIONS[region].cities;
        let weights: Vec<f64> = cities
            .iter()
            .map(|c| {
                if c.key {
                    3.0
                } else if c.remote {
                    0.8
                } else {
                    1.0
                }
            })
            .collect();
        let order = first_pass_order(&weights, &mut rng);
        let pick = WeightedIndex::new(&weights).ok();
        let mut per_city = vec![0usize; cities.len()];
        for i in 0..count {
            // The centre's city first, then every city once in a weighted random order,
            // then further stations by weight.
            let c = match &pick {
                Some(pick) if i >= cities.len() => pick.sample(&mut rng),
                _ => order[i % cities.len()],
            };
            per_city[c] += 1;
            stations.push(place(&cities[c], region, per_city[c], &mut rng));
        }
    }
    for (i, s) in stations.iter_mut().enumerate() {
        s.code = format!("S{:04}", i + 1);
    }
    open_some_late(&mut stations, config, &mut rng);
    stations
}

/// City 0 first, then the others in a weighted random order (Efraimidis–Spirakis keys
/// `u^(1/w)`, largest first).
fn first_pass_order(weights: &[f64], rng: &mut ChaCha8Rng) -> Vec<usize> {
    let mut keyed: Vec<(f64, usize)> = (1..weights.len())
        .map(|i| (rng.gen::<f64>().powf(1.0 / weights[i]), i))
        .collect();
    keyed.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    std::iter::once(0)
        .chain(keyed.into_iter().map(|(_, i)| i))
        .collect()
}

fn place(city: &City, region: usize, nth: usize, rng: &mut ChaCha8Rng) -> Station {
    let (lat, lon) = if nth == 1 {
        (city.lat, city.lon)
    } else {
        (
            city.lat + rng.gen_range(-0.15..0.15),
            city.lon + rng.gen_range(-0.15..0.15),
        )
    };
    let name = if nth == 1 {
        format!("{}服务站", city.name)
    } else {
        format!("{}第{}服务站", city.name, nth)
    };
    Station {
        code: String::new(),
        name,
        region,
        city: city.name,
        lat: round_to(lat, 4),
        lon: round_to(lon, 4),
        key_city: city.key,
        remote: city.remote,
        opened: None,
    }
}

/// About 5 % of stations (at least one when there are four or more) open 3–11 months
/// before the history ends, so they have less than a year of history.
fn open_some_late(stations: &mut [Station], config: &GenerateConfig, rng: &mut ChaCha8Rng) {
    if stations.len() < 4 {
        return;
    }
    let late = ((stations.len() as f64 * 0.05).round() as usize).max(1);
    let candidates: Vec<usize> = (0..stations.len())
        .filter(|&i| !stations[i].key_city)
        .collect();
    let pool = if candidates.len() >= late {
        candidates
    } else {
        (0..stations.len()).collect()
    };
    let end = config.history_end();
    let first = config.start.max(end.plus(-11));
    for i in rand::seq::index::sample(rng, pool.len(), late).into_vec() {
        let offset = rng.gen_range(0..=end.plus(-3).months_since(first).max(0));
        stations[pool[i]].opened = Some(first.plus(offset));
    }
}

pub fn round_to(x: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (x * scale).round() / scale
}

/// Usage index per region × model × calendar month, as written to peak_season.csv.
pub struct Seasons {
    models: usize,
    index: Vec<f64>,
}

impl Seasons {
    /// A model's line sharpens or softens the region's climate (road works stop harder in
    /// winter than tower cranes); a little noise per region × model; mean 1 over the year,
    /// rounded to 3 decimals because the rounded value is what the data says.
    pub fn build(config: &GenerateConfig, catalog: &Catalog) -> Seasons {
        let mut rng = stream(config.seed, Stream::Seasons, 0);
        let noise = Normal::new(0.0, 0.04).ok();
        let models = catalog.models.len();
        let mut index = Vec::with_capacity(REGIONS.len() * models * 12);
        for region in &REGIONS {
            for model in &catalog.models {
                let sharpness = catalog.lines[model.line].seasonality;
                let raw: Vec<f64> = region
                    .climate
                    .iter()
                    .map(|&c| {
                        let wobble = noise.map_or(0.0, |n| n.sample(&mut rng));
                        c.powf(sharpness) * (1.0_f64 + wobble).max(0.5)
                    })
                    .collect();
                let mean = raw.iter().sum::<f64>() / 12.0;
                index.extend(raw.iter().map(|x| round_to(x / mean, 3).max(0.001)));
            }
        }
        Seasons { models, index }
    }

    pub fn usage(&self, region: usize, model: usize, month: YearMonth) -> f64 {
        self.index_of(region, model, month.month())
    }

    /// The index for calendar month 1..=12.
    pub fn index_of(&self, region: usize, model: usize, calendar_month: u32) -> f64 {
        self.index[(region * self.models + model) * 12 + calendar_month as usize - 1]
    }
}

/// A lane as generated, before it becomes a `LaneRow`.
pub struct Lane {
    pub from: String,
    pub to: String,
    pub days: u32,
    pub cost_fen: i64,
}

fn lane(from: &str, to: &str, days: u32, base_cny: f64, per_km: f64, km: f64) -> Lane {
    Lane {
        from: from.to_owned(),
        to: to.to_owned(),
        days,
        cost_fen: ((base_cny + per_km * km) * 100.0).round() as i64,
    }
}

/// Central → every regional centre (2–5 days by distance), regional → its stations (1–3
/// days), direct central → some key-city stations, and lateral 1-day lanes between a few
/// close station pairs of the same region, both ways.
pub fn build_lanes(config: &GenerateConfig, stations: &[Station]) -> Vec<Lane> {
    let mut rng = stream(config.seed, Stream::Lanes, 0);
    let central = (CENTRAL_CITY.lat, CENTRAL_CITY.lon);
    let mut lanes = Vec::new();
    for (r, region) in REGIONS.iter().enumerate() {
        let hub = (region.cities[0].lat, region.cities[0].lon);
        let km = distance_km(central, hub);
        let days = (2.0 + km / 600.0).floor().clamp(2.0, 5.0) as u32;
        lanes.push(lane(CENTRAL_CODE, &regional_code(r), days, 1.5, 0.004, km));
    }
    for s in stations {
        let hub = REGIONS[s.region].cities[0];
        let km = distance_km((hub.lat, hub.lon), (s.lat, s.lon));
        let days = (1.0 + km / 400.0).floor() as u32 + u32::from(s.remote);
        lanes.push(lane(
            &regional_code(s.region),
            &s.code,
            days.clamp(1, 3),
            3.0,
            0.01,
            km,
        ));
        let near_central = REGIONS[s.region].name == "湖北湖南";
        if s.key_city && (near_central || rng.gen_bool(0.15)) {
            let km = distance_km(central, (s.lat, s.lon));
            let days = (1.0 + km / 500.0).floor().clamp(1.0, 5.0) as u32;
            lanes.push(lane(CENTRAL_CODE, &s.code, days, 5.0, 0.015, km));
        }
    }
    for ((a, b), km) in lateral_pairs(stations, &mut rng) {
        lanes.push(lane(&stations[a].code, &stations[b].code, 1, 8.0, 0.03, km));
        lanes.push(lane(&stations[b].code, &stations[a].code, 1, 8.0, 0.03, km));
    }
    lanes
}

/// Each station's nearest neighbour in its region, if within 250 km, kept with
/// probability 0.35; pairs deduplicated and in index order.
fn lateral_pairs(stations: &[Station], rng: &mut ChaCha8Rng) -> BTreeMap<(usize, usize), f64> {
    let mut pairs = BTreeMap::new();
    for (i, s) in stations.iter().enumerate() {
        let nearest = stations
            .iter()
            .enumerate()
            .filter(|(j, t)| *j != i && t.region == s.region)
            .map(|(j, t)| (j, distance_km((s.lat, s.lon), (t.lat, t.lon))))
            .min_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        if let Some((j, km)) = nearest {
            if km < 250.0 && rng.gen_bool(0.35) {
                pairs.entry((i.min(j), i.max(j))).or_insert(km);
            }
        }
    }
    pairs
}

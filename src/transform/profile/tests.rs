//! Unit tests of profiles: built-ins, TOML errors, directories, header detection.

use super::*;

const MINIMAL: &str = r#"
    name = "shop"
    [columns]
    event_time = "ts"
    user_id = "customer"
    session_id = "visit"
    event_type = "action"
    product_id = "sku"
    product_price = "price"
    [defaults]
    quantity = "1"
"#;

fn error(text: &str) -> String {
    Profile::from_toml(text, "shop.toml")
        .unwrap_err()
        .to_string()
}

#[test]
fn built_ins_are_valid_and_native_is_the_contract_itself() {
    let profiles = Profiles::default();
    let names: Vec<&str> = profiles.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["native", "rees46"]);
    let native = &profiles.list[0];
    assert!(native.is_contract_itself());
    assert_eq!(native.expected_columns(), COLUMNS);
    let rees46 = &profiles.list[1];
    assert!(!rees46.is_contract_itself());
    assert_eq!(
        rees46.expected_columns().join(","),
        "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session"
    );
}

#[test]
fn a_minimal_profile_reads_with_defaults() {
    let p = Profile::from_toml(MINIMAL, "shop.toml").unwrap();
    assert_eq!(p.name, "shop");
    assert_eq!(p.delimiter, None);
    assert!(matches!(&p.time_formats[..], [TimeFormat::Rfc3339]));
    assert_eq!(
        p.expected_columns(),
        ["ts", "customer", "visit", "action", "sku", "price"]
    );
}

#[test]
fn toml_errors_name_the_file_line_and_problem() {
    let syntax = error("name = \"shop\"\n[columns\n");
    assert!(
        syntax.starts_with("source profile shop.toml is not a valid profile file: "),
        "{syntax}"
    );
    assert!(syntax.contains("line 2"), "{syntax}");
    let unknown = error(&format!("colour = \"red\"\n{MINIMAL}"));
    assert!(unknown.contains("unknown field `colour`"), "{unknown}");
    let shape = error("name = \"shop\"\n[columns]\nevent_time = { col = \"ts\" }\n");
    assert!(shape.contains("unknown field `col`"), "{shape}");
    let missing = error("name = \"shop\"\n");
    assert!(missing.contains("missing field `columns`"), "{missing}");
}

#[test]
fn invalid_values_name_the_field() {
    let cases = [
        (MINIMAL.replace("\"shop\"", "\"My Shop\""), "source profile shop.toml: name \"My Shop\" must be lowercase letters, digits, `_` or `-`"),
        (format!("timezone = \"Mars/Olympus\"\n{MINIMAL}"), "timezone \"Mars/Olympus\" is neither an IANA zone name"),
        (format!("delimiter = \":\"\n{MINIMAL}"), "delimiter \":\" is not one of"),
        (format!("time_formats = [\"%d.%m.%Y\"]\n{MINIMAL}"), "time format \"%d.%m.%Y\" does not read a date and time back"),
        (format!("time_formats = [\"%Q\"]\n{MINIMAL}"), "time format \"%Q\" is not a valid chrono pattern"),
        (format!("purchase_total = \"guess\"\n{MINIMAL}"), "purchase_total \"guess\": the only option is"),
        (MINIMAL.replace("sku", "").replace("product_id = \"\"", "produkt = \"sku\""), "[columns] names \"produkt\", which is not a column of the contract"),
        (MINIMAL.replace("quantity = \"1\"", ""), "quantity is required by the contract: map a source column to it"),
        (format!("{MINIMAL}\n[event_types]\nklick = \"click\"\n"), "[event_types] \"klick\" = \"click\": the contract's event types are view, add_to_cart, remove_from_cart, purchase"),
    ];
    for (text, expected) in cases {
        let e = error(&text);
        assert!(e.contains(expected), "{e}\n  does not contain\n{expected}");
    }
}

#[test]
fn user_profiles_load_from_a_directory_and_may_replace_a_built_in() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("b.toml"), MINIMAL).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a profile").unwrap();
    let rees =
        include_str!("builtin/rees46.toml").replace("timezone = \"UTC\"", "timezone = \"+02:00\"");
    std::fs::write(dir.path().join("a.toml"), rees).unwrap();
    let profiles = Profiles::load(Some(dir.path())).unwrap();
    let names: Vec<(&str, bool)> = profiles
        .iter()
        .map(|p| (p.name.as_str(), p.origin == "built-in"))
        .collect();
    assert_eq!(
        names,
        [("native", true), ("rees46", false), ("shop", false)]
    );
    std::fs::write(dir.path().join("c.toml"), MINIMAL).unwrap();
    let twice = Profiles::load(Some(dir.path())).unwrap_err().to_string();
    assert!(
        twice.starts_with("source profile name \"shop\" is used twice: "),
        "{twice}"
    );
}

#[test]
fn detection_picks_the_profile_reading_most_columns_and_names_every_miss() {
    let mut profiles = Profiles::default();
    profiles.add(Profile::from_toml(MINIMAL, "shop.toml").unwrap());
    let pick = |profiles: &Profiles, header: &str| match profiles.detect(header, b',') {
        Detection::Found(d) => d.profile.name.clone(),
        Detection::Ambiguous(names) => format!("ambiguous {names:?}"),
        Detection::NoFit(misses) => format!(
            "none: {}",
            misses
                .iter()
                .map(|m| m.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        ),
    };
    assert_eq!(pick(&profiles, &crate::schema::header_line()), "native");
    assert_eq!(
        pick(&profiles, "TS, Customer ,visit,action,sku,price,note"),
        "shop"
    );
    assert_eq!(
        pick(&profiles, "user_id,price"),
        "none: native (lacks event_id, event_time, session_id, event_type, product_id, \
         product_category, product_price, quantity, total_amount, device, country; expects \
         event_id,event_time,user_id,session_id,event_type,product_id,product_category,\
         product_price,quantity,total_amount,device,country in any order); rees46 (lacks \
         event_time, event_type, product_id, category_id, category_code, brand, user_session; \
         expects event_time,event_type,product_id,category_id,category_code,brand,price,\
         user_id,user_session in any order); shop (lacks ts, customer, visit, action, sku; \
         expects ts,customer,visit,action,sku,price in any order)"
    );
    // A second profile reading the same columns: a tie is refused, not guessed.
    profiles.add(Profile::from_toml(&MINIMAL.replace("\"shop\"", "\"shop2\""), "x").unwrap());
    assert_eq!(
        pick(&profiles, "ts,customer,visit,action,sku,price"),
        "ambiguous [\"shop\", \"shop2\"]"
    );
}

fn read(format: &str, text: &str) -> Option<String> {
    let zone = Zone::parse("UTC").unwrap();
    TimeFormat::new(format)
        .parse(text, zone)
        .unwrap()
        .map(|t| t.to_rfc3339())
}

#[test]
fn a_four_digit_year_takes_four_digits_and_a_two_digit_year_two_with_chronos_pivot() {
    let long = "%m/%d/%Y %H:%M";
    let short = "%m/%d/%y %H:%M";
    assert_eq!(read(long, "2/20/11 11:39"), None, "not the year 11");
    assert_eq!(
        read(long, "2/20/2011 11:39").as_deref(),
        Some("2011-02-20T11:39:00+00:00")
    );
    assert_eq!(read(long, "2/20/20110 11:39"), None);
    assert_eq!(
        read(short, "2/20/11 11:39").as_deref(),
        Some("2011-02-20T11:39:00+00:00")
    );
    assert_eq!(read(short, "2/20/2011 11:39"), None);
    assert_eq!(read(short, "2/20/1 11:39"), None);
    // chrono's pivot: 00-69 are 2000-2069, 70-99 are 1970-1999.
    assert_eq!(
        read(short, "1/1/69 0:00").as_deref(),
        Some("2069-01-01T00:00:00+00:00")
    );
    assert_eq!(
        read(short, "1/1/70 0:00").as_deref(),
        Some("1970-01-01T00:00:00+00:00")
    );
    // Day and month take at most two digits.
    assert_eq!(read("%d.%m.%Y %H:%M", "123.10.2019 10:30"), None);
    assert_eq!(
        read("%d.%m.%Y %H:%M", "1.10.2019 10:30").as_deref(),
        Some("2019-10-01T10:30:00+00:00")
    );
    let offset = "%Y-%m-%dT%H:%M:%S%:z";
    assert_eq!(read(offset, "11-10-01T10:30:00+02:00"), None);
    assert_eq!(
        read(offset, "2019-10-01T10:30:00+02:00").as_deref(),
        Some("2019-10-01T08:30:00+00:00")
    );
}

#[test]
fn a_profile_listing_both_day_month_orders_is_refused_at_load() {
    let both = MINIMAL.replace(
        "[columns]",
        "time_formats = [\"%d/%m/%Y %H:%M\", \"%m/%d/%Y %H:%M\"]\n[columns]",
    );
    assert_eq!(
        error(&both),
        "source profile shop.toml: time formats \"%d/%m/%Y %H:%M\" and \"%m/%d/%Y %H:%M\" both \
         read \"04/03/2019 10:30\", as different times (day and month swapped?); list only the \
         order the source writes"
    );
    let years = MINIMAL.replace(
        "[columns]",
        "time_formats = [\"%m/%d/%Y %H:%M\", \"%m/%d/%y %H:%M\"]\n[columns]",
    );
    assert!(Profile::from_toml(&years, "shop.toml").is_ok());
}

#[test]
fn a_profile_sets_its_event_time_window_and_a_bad_one_is_refused() {
    let own = MINIMAL.replace(
        "[columns]",
        "event_time_window = \"2019-01-01..2020-01-01\"\n[columns]",
    );
    let p = Profile::from_toml(&own, "shop.toml").unwrap();
    assert_eq!(p.window.unwrap().to_string(), "2019-01-01..2020-01-01");
    assert!(Profile::from_toml(MINIMAL, "shop.toml")
        .unwrap()
        .window
        .is_none());
    let bad = MINIMAL.replace("[columns]", "event_time_window = \"2019\"\n[columns]");
    assert!(
        error(&bad).starts_with("source profile shop.toml: event_time window \"2019\": no \"..\""),
        "{}",
        error(&bad)
    );
}

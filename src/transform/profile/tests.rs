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

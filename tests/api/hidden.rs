//! Hidden is unknown, for every viewer and every document: a property over generated
//! documents.
//!
//! Documents are generated over the whole schema (fields, aliases, arguments, nested
//! input objects and lists, enum values, variables unsent, null, sent and defaulted,
//! variable types, named and inline fragments, directives, a second operation). For each
//! viewer, every name in a document that the viewer's schema does not have (a field, an
//! argument, an input field, an enum value, a type) is swapped for a name that no schema
//! has, of the same shape; both documents are sent, and the answers must be the same,
//! status and body byte for byte, once the swapped names are put back (suggestions aside,
//! which follow the spelling: they are checked never to name a hidden field). And every
//! such document is refused: a hidden or unknown name never runs.
//!
//! `C360_HIDDEN_DOCUMENTS` sets how many documents (default 300, the CI slice);
//! `C360_HIDDEN_SEED` the first seed. The long run:
//! `C360_HIDDEN_DOCUMENTS=100000 cargo test --release --test api hidden::`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use async_graphql::parser::types::{BaseType, Type, TypeKind, TypeSystemDefinition};
use c360::auth::Role;
use c360::graphql::privacy::PrivacyTable;
use c360::policy::Policy;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use crate::helpers::{Backend, Layout, TestApp};

/// A field's type and its arguments with theirs.
type FieldDef = (Type, Vec<(String, Type)>);

/// The types of a schema, as the generator and the comparison need them.
#[derive(Default)]
struct Model {
    /// Objects and interfaces: field → (type, arguments).
    composite: BTreeMap<String, BTreeMap<String, FieldDef>>,
    implementors: BTreeMap<String, Vec<String>>,
    inputs: BTreeMap<String, Vec<(String, Type)>>,
    enums: BTreeMap<String, Vec<String>>,
    scalars: BTreeSet<String>,
}

impl Model {
    fn parse(sdl: &str) -> Model {
        let document = async_graphql::parser::parse_schema(sdl).expect("the schema parses");
        let mut model = Model::default();
        for scalar in ["Int", "Float", "String", "Boolean", "ID"] {
            model.scalars.insert(scalar.to_owned());
        }
        for definition in &document.definitions {
            let TypeSystemDefinition::Type(ty) = definition else { continue };
            let name = ty.node.name.node.to_string();
            let fields = match &ty.node.kind {
                TypeKind::Object(o) => {
                    for interface in &o.implements {
                        model.implementors.entry(interface.node.to_string()).or_default().push(name.clone());
                    }
                    &o.fields
                }
                TypeKind::Interface(i) => &i.fields,
                TypeKind::InputObject(input) => {
                    let fields = input.fields.iter().map(|f| (f.node.name.node.to_string(), f.node.ty.node.clone()));
                    model.inputs.insert(name, fields.collect());
                    continue;
                }
                TypeKind::Enum(e) => {
                    model.enums.insert(name, e.values.iter().map(|v| v.node.value.node.to_string()).collect());
                    continue;
                }
                TypeKind::Scalar => {
                    model.scalars.insert(name);
                    continue;
                }
                TypeKind::Union(_) => continue,
            };
            let fields = fields.iter().map(|f| {
                let args = f.node.arguments.iter().map(|a| (a.node.name.node.to_string(), a.node.ty.node.clone()));
                (f.node.name.node.to_string(), (f.node.ty.node.clone(), args.collect()))
            });
            model.composite.insert(name, fields.collect());
        }
        model
    }

    fn has_type(&self, name: &str) -> bool {
        self.composite.contains_key(name)
            || self.inputs.contains_key(name)
            || self.enums.contains_key(name)
            || self.scalars.contains(name)
    }

    /// Whether `name` is one this schema does not have, where its owner is one it has.
    fn hides(&self, full: &Model, name: &NameRef) -> bool {
        match &name.kind {
            Kind::Type => full.has_type(&name.name) && !self.has_type(&name.name),
            Kind::Field => self.composite.get(&name.owner).is_some_and(|f| !f.contains_key(&name.name)),
            Kind::Argument(field) => self
                .composite
                .get(&name.owner)
                .and_then(|f| f.get(field))
                .is_some_and(|(_, args)| !args.iter().any(|(a, _)| *a == name.name)),
            Kind::InputField => self.inputs.get(&name.owner).is_some_and(|f| !f.iter().any(|(n, _)| *n == name.name)),
            Kind::EnumValue => self.enums.get(&name.owner).is_some_and(|v| !v.contains(&name.name)),
        }
    }

    /// Every name the schema has.
    fn names(&self) -> BTreeSet<String> {
        let mut names: BTreeSet<String> = self.scalars.clone();
        for (t, fields) in &self.composite {
            names.insert(t.clone());
            for (f, (_, args)) in fields {
                names.insert(f.clone());
                names.extend(args.iter().map(|(a, _)| a.clone()));
            }
        }
        for (t, fields) in &self.inputs {
            names.insert(t.clone());
            names.extend(fields.iter().map(|(f, _)| f.clone()));
        }
        for (t, values) in &self.enums {
            names.insert(t.clone());
            names.extend(values.iter().cloned());
        }
        names
    }
}

fn base(ty: &Type) -> &str {
    match &ty.base {
        BaseType::Named(name) => name.as_str(),
        BaseType::List(inner) => base(inner),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Kind {
    Type,
    Field,
    /// Of the named field of the owner.
    Argument(String),
    InputField,
    EnumValue,
}

/// A name in a generated document, with what it names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct NameRef {
    kind: Kind,
    owner: String,
    name: String,
}

#[derive(Debug, Clone)]
enum Piece {
    Text(String),
    Name(NameRef),
}

/// Text with names in it.
#[derive(Debug, Clone, Default)]
struct Pieces(Vec<Piece>);

impl Pieces {
    fn text(&mut self, text: &str) {
        self.0.push(Piece::Text(text.to_owned()));
    }

    fn name(&mut self, kind: Kind, owner: &str, name: &str) {
        self.0.push(Piece::Name(NameRef { kind, owner: owner.to_owned(), name: name.to_owned() }));
    }

    fn append(&mut self, other: Pieces) {
        self.0.extend(other.0);
    }

    fn names(&self) -> impl Iterator<Item = &NameRef> {
        self.0.iter().filter_map(|p| match p {
            Piece::Name(n) => Some(n),
            Piece::Text(_) => None,
        })
    }

    fn render(&self, swap: &dyn Fn(&NameRef) -> Option<String>) -> String {
        let mut out = String::new();
        for piece in &self.0 {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Name(n) => out.push_str(&swap(n).unwrap_or_else(|| n.name.clone())),
            }
        }
        out
    }
}

/// A generated request: document, variables (as JSON text with names in it) and the
/// operation to run.
struct Generated {
    document: Pieces,
    variables: Pieces,
    operation: Option<&'static str>,
}

impl Generated {
    fn names(&self) -> impl Iterator<Item = &NameRef> {
        self.document.names().chain(self.variables.names())
    }
}

struct Gen<'a> {
    full: &'a Model,
    rng: ChaCha8Rng,
    /// Variables declared so far: (declaration, value sent as JSON).
    declarations: Vec<Pieces>,
    sent: Vec<(String, Pieces)>,
    fragments: Vec<Pieces>,
}

impl Gen<'_> {
    fn chance(&mut self, percent: u32) -> bool {
        self.rng.random_range(0..100) < percent
    }

    fn pick<'b, T>(&mut self, items: &'b [T]) -> Option<&'b T> {
        (!items.is_empty()).then(|| &items[self.rng.random_range(0..items.len())])
    }

    fn document(&mut self) -> Generated {
        let mut body = Pieces::default();
        self.selection_set("Query", 1, &mut body);
        let mut document = Pieces::default();
        document.text("query Q");
        if !self.declarations.is_empty() {
            document.text("(");
            for (i, declaration) in std::mem::take(&mut self.declarations).into_iter().enumerate() {
                if i > 0 {
                    document.text(", ");
                }
                document.append(declaration);
            }
            document.text(")");
        }
        document.text(" ");
        document.append(body);
        let operation = match self.chance(15) {
            true => {
                document.text(" query Other { __typename }");
                Some("Q")
            }
            false => None,
        };
        for fragment in std::mem::take(&mut self.fragments) {
            document.text(" ");
            document.append(fragment);
        }
        let mut variables = Pieces::default();
        variables.text("{");
        for (i, (name, value)) in std::mem::take(&mut self.sent).into_iter().enumerate() {
            variables.text(&format!("{}\"{name}\": ", if i > 0 { ", " } else { "" }));
            variables.append(value);
        }
        variables.text("}");
        Generated { document, variables, operation }
    }

    fn selection_set(&mut self, ty: &str, depth: usize, out: &mut Pieces) {
        let Some(fields) = self.full.composite.get(ty) else {
            out.text("{ __typename }");
            return;
        };
        let fields: Vec<(String, FieldDef)> = fields.iter().map(|(n, f)| (n.clone(), f.clone())).collect();
        out.text("{");
        for _ in 0..self.rng.random_range(1..=3) {
            out.text(" ");
            let roll = self.rng.random_range(0..100);
            if roll < 72 || depth >= 3 {
                let Some((name, (field_ty, args))) = self.pick(&fields).cloned() else { continue };
                if self.chance(10) {
                    out.text(&format!("a{}: ", self.rng.random_range(0..100)));
                }
                out.name(Kind::Field, ty, &name);
                let args: Vec<_> = args.into_iter().filter(|(_, t)| !t.nullable || self.chance(45)).collect();
                if !args.is_empty() {
                    out.text("(");
                    for (i, (arg, arg_ty)) in args.into_iter().enumerate() {
                        out.text(if i > 0 { ", " } else { "" });
                        out.name(Kind::Argument(name.clone()), ty, &arg);
                        out.text(": ");
                        self.value(&arg_ty, 0, out, true);
                    }
                    out.text(")");
                }
                if self.chance(8) {
                    out.text(" @skip(if: ");
                    self.value(&Type::new("Boolean!").expect("type"), 0, out, true);
                    out.text(")");
                }
                let inner = base(&field_ty).to_owned();
                if self.full.composite.contains_key(&inner) {
                    out.text(" ");
                    match depth < 3 {
                        true => self.selection_set(&inner, depth + 1, out),
                        false => out.text("{ __typename }"),
                    }
                }
            } else if roll < 88 {
                let on = match self.full.implementors.get(ty) {
                    Some(objects) => self.pick(objects).cloned(),
                    None if self.chance(70) => Some(ty.to_owned()),
                    None => None,
                };
                out.text("... ");
                if let Some(on) = &on {
                    out.text("on ");
                    out.name(Kind::Type, "", on);
                    out.text(" ");
                }
                self.selection_set(on.as_deref().unwrap_or(ty), depth + 1, out);
            } else {
                let name = format!("F{}", self.fragments.len());
                let on = match self.full.implementors.get(ty) {
                    Some(objects) if self.chance(50) => self.pick(objects).cloned().unwrap_or(ty.to_owned()),
                    _ => ty.to_owned(),
                };
                out.text(&format!("...{name}"));
                let mut fragment = Pieces::default();
                fragment.text(&format!("fragment {name} on "));
                fragment.name(Kind::Type, "", &on);
                fragment.text(" ");
                self.fragments.push(Pieces::default());
                let slot = self.fragments.len() - 1;
                self.selection_set(&on, depth + 1, &mut fragment);
                self.fragments[slot] = fragment;
            }
        }
        out.text(" }");
    }

    /// A value of `ty` in a document (a variable in its place, at times, when `vars`).
    fn value(&mut self, ty: &Type, depth: usize, out: &mut Pieces, vars: bool) {
        if vars && self.chance(22) {
            let name = format!("v{}", self.declarations.len());
            let mut declaration = Pieces::default();
            declaration.text(&format!("${name}: "));
            self.type_reference(ty, &mut declaration);
            match self.rng.random_range(0..4) {
                0 => {}
                1 => self.sent.push((name.clone(), text("null"))),
                2 => {
                    let mut sent = Pieces::default();
                    self.json(ty, 0, &mut sent);
                    self.sent.push((name.clone(), sent));
                }
                _ => {
                    declaration.text(" = ");
                    self.value(ty, depth, &mut declaration, false);
                }
            }
            self.declarations.push(declaration);
            out.text(&format!("${name}"));
            return;
        }
        if ty.nullable && self.chance(8) {
            out.text("null");
            return;
        }
        match &ty.base {
            BaseType::List(inner) => {
                out.text("[");
                for i in 0..self.rng.random_range(1..=2) {
                    out.text(if i > 0 { ", " } else { "" });
                    self.value(inner, depth + 1, out, vars);
                }
                out.text("]");
            }
            BaseType::Named(name) => {
                let name = name.to_string();
                if let Some(values) = self.full.enums.get(&name) {
                    let value = self.pick(values).cloned().unwrap_or_default();
                    out.name(Kind::EnumValue, &name, &value);
                } else if let Some(fields) = self.full.inputs.get(&name).cloned() {
                    out.text("{");
                    for (field, field_ty) in &fields {
                        if depth > 2 || (field_ty.nullable && !self.chance(45)) {
                            continue;
                        }
                        out.text(" ");
                        out.name(Kind::InputField, &name, field);
                        out.text(": ");
                        self.value(field_ty, depth + 1, out, vars);
                    }
                    out.text(" }");
                } else {
                    out.text(&self.scalar(&name));
                }
            }
        }
    }

    /// A variable's value as JSON.
    fn json(&mut self, ty: &Type, depth: usize, out: &mut Pieces) {
        match &ty.base {
            BaseType::List(inner) => {
                out.text("[");
                self.json(inner, depth + 1, out);
                out.text("]");
            }
            BaseType::Named(name) => {
                let name = name.to_string();
                if let Some(values) = self.full.enums.get(&name) {
                    let value = self.pick(values).cloned().unwrap_or_default();
                    out.text("\"");
                    out.name(Kind::EnumValue, &name, &value);
                    out.text("\"");
                } else if let Some(fields) = self.full.inputs.get(&name).cloned() {
                    out.text("{");
                    let mut first = true;
                    for (field, field_ty) in &fields {
                        if depth > 2 || !self.chance(50) {
                            continue;
                        }
                        out.text(if first { "\"" } else { ", \"" });
                        first = false;
                        out.name(Kind::InputField, &name, field);
                        out.text("\": ");
                        self.json(field_ty, depth + 1, out);
                    }
                    out.text("}");
                } else {
                    let scalar = self.scalar(&name);
                    out.text(&scalar);
                }
            }
        }
    }

    fn scalar(&mut self, name: &str) -> String {
        match name {
            "Int" => self.rng.random_range(1..4).to_string(),
            "Float" => "0.5".to_owned(),
            "Boolean" => self.chance(50).to_string(),
            "String" | "ID" => "\"x\"".to_owned(),
            _ => "\"2024-01-01T00:00:00Z\"".to_owned(),
        }
    }

    fn type_reference(&mut self, ty: &Type, out: &mut Pieces) {
        match &ty.base {
            BaseType::List(inner) => {
                out.text("[");
                self.type_reference(inner, out);
                out.text("]");
            }
            BaseType::Named(name) => out.name(Kind::Type, "", name),
        }
        if !ty.nullable {
            out.text("!");
        }
    }
}

fn text(t: &str) -> Pieces {
    let mut p = Pieces::default();
    p.text(t);
    p
}

/// A name no schema has, of the same shape as `name` (same length and initial case).
fn twin(name: &str, taken: &BTreeSet<String>) -> String {
    let mut chars: Vec<char> = name.chars().collect();
    for at in (1..chars.len()).rev() {
        for c in ['q', 'z', 'x', 'j'] {
            let original = chars[at];
            chars[at] = if original.is_ascii_uppercase() { c.to_ascii_uppercase() } else { c };
            let candidate: String = chars.iter().collect();
            if !taken.contains(&candidate) && candidate != name {
                return candidate;
            }
            chars[at] = original;
        }
    }
    format!("{name}Q")
}

/// A response as text, suggestions aside; and the names its suggestions offer.
fn without_suggestions(body: &str) -> (String, Vec<String>) {
    let mut out = String::new();
    let mut offered = Vec::new();
    let mut rest = body;
    while let Some(at) = rest.find(" Did you mean ") {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let end = tail.find('?').map_or(tail.len(), |e| e + 1);
        offered.extend(tail[..end].split("\\\"").skip(1).step_by(2).map(str::to_owned));
        rest = &tail[end..];
    }
    out.push_str(rest);
    (out, offered)
}

/// The viewers, by role and scopes (the policy matrix's, and more).
fn viewers() -> Vec<(&'static str, Role, Option<&'static str>, Option<&'static str>)> {
    vec![
        ("agent", Role::Agent, None, None),
        ("frontend", Role::Frontend, None, None),
        ("frontend with insights", Role::Frontend, Some("customers:read orders:read tickets:read insights:read"), None),
        ("frontend without orders", Role::Frontend, Some("customers:read tickets:read"), None),
        ("analyst", Role::Analyst, None, None),
        ("analyst without insights", Role::Analyst, Some("customers:read orders:read tickets:read"), None),
        ("partner", Role::Partner, None, Some("acme-insurance")),
        (
            "partner with pii and insights",
            Role::Partner,
            Some("customers:read pii:read insights:read"),
            Some("acme-insurance"),
        ),
    ]
}

fn documents() -> u64 {
    std::env::var("C360_HIDDEN_DOCUMENTS").ok().and_then(|n| n.parse().ok()).unwrap_or(300)
}

async fn hidden_is_unknown(backend: Backend, documents: u64) {
    let app = TestApp::spawn_with(Layout::all(backend), 20, |config| {
        // Every viewer may introspect and gets suggestions; no rate limit splits a pair.
        config.graphql.introspection_roles =
            ["admin", "agent", "frontend", "analyst", "partner"].map(str::to_owned).to_vec();
        config.rate_limits.roles.clear();
    })
    .await;
    let full = Model::parse(&c360::graphql::sdl());
    let taken = full.names();
    let fields = PrivacyTable::from_sdl(&c360::graphql::sdl()).expect("classes").value_fields();
    let policy = Policy::load(None, &fields).expect("the shipped policy");
    let first_seed: u64 = std::env::var("C360_HIDDEN_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1);

    let mut pairs = 0;
    let mut seen_kinds = BTreeSet::new();
    for (label, role, scopes, partner) in viewers() {
        let token = app.token(role, scopes, partner);
        let mut viewer = c360::auth::Viewer::with_role(role, partner);
        if let Some(scopes) = scopes {
            viewer.scopes = scopes.split(' ').map(str::to_owned).collect();
        }
        let access = policy.access(&viewer);
        let mine = Model::parse(&c360::graphql::privacy::viewer::sdl(access.hidden_set()));
        // The policy's hidden classes are gone from the viewer's schema, every field of them.
        for field in &fields {
            let (ty, name) = field.name.split_once('.').expect("Type.field");
            if access.hides(field.class) {
                assert!(
                    !mine.composite.get(ty).is_some_and(|f| f.contains_key(name)),
                    "{label}: {} is hidden and in the schema",
                    field.name
                );
            }
        }
        let hidden_fields: BTreeSet<&String> = full
            .composite
            .values()
            .flat_map(|f| f.keys())
            .filter(|f| !mine.composite.values().any(|m| m.contains_key(*f)))
            .collect();

        for seed in first_seed..first_seed + documents {
            let mut generator = Gen {
                full: &full,
                rng: ChaCha8Rng::seed_from_u64(seed),
                declarations: Vec::new(),
                sent: Vec::new(),
                fragments: Vec::new(),
            };
            let generated = generator.document();
            let hidden: BTreeSet<NameRef> = generated.names().filter(|n| mine.hides(&full, n)).cloned().collect();
            if hidden.is_empty() {
                continue;
            }
            let swaps: HashMap<NameRef, String> = hidden.iter().map(|n| (n.clone(), twin(&n.name, &taken))).collect();
            seen_kinds.extend(hidden.iter().map(|n| match n.kind {
                Kind::Argument(_) => Kind::Argument(String::new()),
                ref other => other.clone(),
            }));
            let ask = |swap: &dyn Fn(&NameRef) -> Option<String>| {
                let query = generated.document.render(swap);
                let variables: Value = serde_json::from_str(&generated.variables.render(swap)).expect("variables JSON");
                let mut body = json!({ "query": query, "variables": variables });
                if let Some(operation) = generated.operation {
                    body["operationName"] = json!(operation);
                }
                (query, body)
            };
            let (query, hidden_body) = ask(&|_| None);
            let (twin_query, twin_body) = ask(&|n| swaps.get(n).cloned());
            let bearer = format!("Bearer {token}");
            let (status, answer) = app.post(Some(&bearer), hidden_body).await;
            let (twin_status, twin_answer) = app.post(Some(&bearer), twin_body).await;
            let mut twin_text = twin_answer.to_string();
            for (name, swapped) in &swaps {
                twin_text = twin_text.replace(swapped.as_str(), &name.name);
            }
            let (answer_text, offered) = without_suggestions(&answer.to_string());
            let (twin_text, _) = without_suggestions(&twin_text);
            let context = format!("{label}, seed {seed}\n  hidden: {query}\n  twin:   {twin_query}");
            assert_eq!((status, &answer_text), (twin_status, &twin_text), "{context}");
            assert!(answer.get("data").is_none_or(Value::is_null), "a hidden name ran: {context}\n{answer:#}");
            assert!(!answer["errors"].as_array().is_none_or(Vec::is_empty), "{context}\n{answer:#}");
            for name in offered {
                assert!(!hidden_fields.contains(&name), "a suggestion names hidden `{name}`: {context}");
            }
            pairs += 1;
        }
    }
    eprintln!("hidden is unknown: {pairs} pairs over {documents} documents per viewer");
    assert!(pairs >= documents / 4, "too few documents named something hidden: {pairs}");
    assert!(seen_kinds.len() >= 4, "hidden names of only {} kinds were tried", seen_kinds.len());
}

#[tokio::test]
async fn hidden_is_unknown_on_sqlite() {
    hidden_is_unknown(Backend::Sqlite, documents()).await;
}

#[tokio::test]
#[ignore = "PostgreSQL: set C360_TEST_POSTGRES_URL and run `cargo test -- --include-ignored`"]
async fn hidden_is_unknown_on_postgres() {
    hidden_is_unknown(Backend::Postgres, documents() / 3).await;
}

#[tokio::test]
#[ignore = "MySQL/MariaDB: set C360_TEST_MYSQL_URL and run `cargo test -- --include-ignored`"]
async fn hidden_is_unknown_on_mysql() {
    hidden_is_unknown(Backend::Mysql, documents() / 3).await;
}

/// The defects found by hand (issue 30), as they were sent: each is refused now, the
/// same as its unknown twin.
#[tokio::test]
async fn the_reported_ways_around_the_policy_are_refused() {
    let app = TestApp::spawn_with(Layout::all(Backend::Sqlite), 20, |config| config.rate_limits.roles.clear()).await;
    let analyst = app.token(Role::Analyst, None, None);
    let partner = app.token(Role::Partner, Some("customers:read insights:read"), Some("acme-insurance"));
    let partner_plain = app.token(Role::Partner, None, Some("acme-insurance"));
    let cases: [(&str, &str, Value, &str); 6] = [
        (
            &analyst,
            "query($w: RfmSegment) { customers(filter: {hasSource: MARKETING, rfmSegment: $w}) { totalCount } }",
            json!({}),
            "hasSource",
        ),
        (
            &analyst,
            "query($w: RfmSegment) { customers(filter: {hasSourcx: MARKETING, rfmSegment: $w}) { totalCount } }",
            json!({}),
            "hasSourcx",
        ),
        (
            &partner,
            "query($v: SourceName, $w: RfmSegment) { customers(first: 3, filter: {hasSource: $v, rfmSegment: $w}) { totalCount edges { node { displayName } } } }",
            json!({"v": "HELPDESK"}),
            "hasSource",
        ),
        (&partner_plain, "query($g: Gender) { customers(first: 1) { totalCount } }", json!({}), "Gender"),
        (&partner_plain, "{ customers(filter: {}) { totalCount } }", json!({}), "filter"),
        (&partner_plain, "{ customers(orderBy: null) { totalCount } }", json!({}), "orderBy"),
    ];
    for (token, query, variables, name) in cases {
        let answer = app.query_as(token, query, variables).await;
        assert!(answer.get("data").is_none_or(Value::is_null), "{query}: {answer:#}");
        assert_eq!(answer["errors"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED", "{query}: {answer:#}");
        assert!(answer["errors"].to_string().contains(name), "{query}: {answer:#}");
    }
}

/// A document's own input values are walked once per viewer schema, and remembered as
/// clean only for that schema: a document clean for an admin, sent again by an analyst
/// from whom a field of it is hidden, is refused, also where async-graphql's own rule
/// does not look (an argument holding an unsent variable); a document refused once is
/// refused every time.
#[tokio::test]
async fn a_document_clean_for_one_viewer_schema_is_checked_again_for_another() {
    let app = TestApp::spawn_with(Layout::all(Backend::Sqlite), 20, |config| config.rate_limits.roles.clear()).await;
    let (admin, analyst) = (app.token(Role::Admin, None, None), app.token(Role::Analyst, None, None));
    let query = "query($w: RfmSegment) { customers(first: 1, filter: {hasSource: MARKETING, rfmSegment: $w}) { edges { node { id } } } }";
    for _ in 0..2 {
        let clean = app.query_as(&admin, query, json!({})).await;
        assert!(clean.get("errors").is_none(), "admin: {clean:#}");
    }
    for _ in 0..3 {
        let answer = app.query_as(&analyst, query, json!({})).await;
        assert!(answer.get("data").is_none_or(Value::is_null), "analyst: {answer:#}");
        assert_eq!(answer["errors"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED", "{answer:#}");
        assert!(answer["errors"].to_string().contains("hasSource"), "{answer:#}");
    }
}

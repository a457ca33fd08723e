//! Operation limits, checked on the parsed document before validation and execution:
//! depth (fragment spreads and inline fragments count as a level), aliases, root fields,
//! directives and cost, all counted with every fragment expanded where it is spread (a
//! fragment spread ten times counts ten times). Cost is one per field, times the page
//! sizes of the lists around it (`first` or `last`, literal or variable, else the
//! argument's default in the viewer's schema, so a field hidden from the viewer costs
//! what a name that never existed costs): `customers(first: 50) { edges { node {
//! orders(first: 5) { totalCount } } } }` costs 1 + 50 + 50 + 50 + 250.

use std::collections::HashSet;

use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationType, Selection, SelectionSet};
use async_graphql::registry::MetaTypeName;
use async_graphql::{Name, Positioned, Value as ConstValue, Variables};
use async_graphql_value::Value;
use indexmap::IndexMap;

use crate::config::GraphqlConfig;
use crate::graphql::privacy::viewer::Types;

/// What a document may not exceed, for one viewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    pub(crate) depth: usize,
    pub(crate) aliases: usize,
    pub(crate) root_fields: usize,
    pub(crate) directives: usize,
    pub(crate) cost: u64,
}

impl Limits {
    /// The configured limits, with the cost budget of `role` where one is set.
    pub(crate) fn for_role(config: &GraphqlConfig, role: &str) -> Limits {
        Limits {
            depth: config.max_depth,
            aliases: config.max_aliases,
            root_fields: config.max_root_fields,
            directives: config.max_directives,
            cost: config.cost_by_role.get(role).copied().unwrap_or(config.max_cost),
        }
    }
}

/// A limit a document exceeded: which, the limit, and what the document reached (at
/// least; counting stops soon after the limit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Exceeded {
    pub(crate) limit: &'static str,
    pub(crate) max: u64,
    pub(crate) found: u64,
}

impl Exceeded {
    pub(crate) fn message(&self) -> String {
        format!("the operation exceeds the {} limit of {} (it reaches {})", self.limit, self.max, self.found)
    }
}

/// How deep brackets (`{`, `[`, `(`) may nest in a document, counted before it is parsed:
/// the parser recurses once per level, and a value nested thousands deep (`[[[[…`) would
/// overflow its stack. Selections, which the depth limit holds to far less, and
/// introspection's type references stay well within it.
pub(crate) const MAX_NESTING: usize = 100;

/// Counts the document's lexical tokens (punctuators, names, numbers and strings; white
/// space, commas and comments are not tokens), before it is parsed: the parser's work
/// grows with them. Stops counting past `max`, or at brackets nested past [`MAX_NESTING`].
pub(crate) fn tokens(query: &str, max: usize) -> Result<usize, Exceeded> {
    let bytes = query.as_bytes();
    let at = |i: usize, s: &[u8]| bytes.get(i..).is_some_and(|rest| rest.starts_with(s));
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let (mut i, mut count, mut nesting) = (0, 0, 0usize);
    while let Some(&c) = bytes.get(i) {
        match c {
            b'{' | b'[' | b'(' => {
                nesting += 1;
                if nesting > MAX_NESTING {
                    return Err(Exceeded { limit: "nesting", max: MAX_NESTING as u64, found: nesting as u64 });
                }
                i += 1;
            }
            b'}' | b']' | b')' => {
                nesting = nesting.saturating_sub(1);
                i += 1;
            }
            b' ' | b'\t' | b'\n' | b'\r' | b',' => {
                i += 1;
                continue;
            }
            b'#' => {
                while bytes.get(i).is_some_and(|&c| c != b'\n' && c != b'\r') {
                    i += 1;
                }
                continue;
            }
            b'"' if at(i, b"\"\"\"") => {
                i += 3;
                while i < bytes.len() && !at(i, b"\"\"\"") {
                    i += if at(i, b"\\\"\"\"") { 4 } else { 1 };
                }
                i += 3;
            }
            b'"' => {
                i += 1;
                while bytes.get(i).is_some_and(|&c| c != b'"' && c != b'\n') {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'.' if at(i, b"...") => i += 3,
            b'-' | b'0'..=b'9' => {
                i += 1;
                while bytes.get(i).is_some_and(|&c| word(c) || c == b'.' || c == b'+' || c == b'-') {
                    i += 1;
                }
            }
            c if word(c) => {
                while bytes.get(i).is_some_and(|&c| word(c)) {
                    i += 1;
                }
            }
            _ => i += 1,
        }
        count += 1;
        if count > max {
            return Err(Exceeded { limit: "tokens", max: max as u64, found: count as u64 });
        }
    }
    Ok(count)
}

/// Checks the operation of `document` that runs (`name`, or the only one) against
/// `limits`: its cost, or the first limit exceeded. The others are not walked: a document
/// of a thousand operations spreading the same fragments costs what the one that runs
/// costs, as async-graphql runs none when the name matches none (and costs nothing).
pub(crate) fn check(
    document: &ExecutableDocument,
    name: Option<&str>,
    variables: &Variables,
    types: &Types,
    max_page: u64,
    limits: &Limits,
) -> Result<u64, Exceeded> {
    let mut cost = 0;
    let operation = match (&document.operations, name) {
        (DocumentOperations::Single(op), _) => Some(op),
        // A name that matches none runs nothing; of a lone operation, that one is walked
        // all the same (a check that cannot tell refuses rather than passes).
        (DocumentOperations::Multiple(ops), Some(name)) => {
            ops.get(name).or_else(|| ops.values().next().filter(|_| ops.len() == 1))
        }
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next(),
        (DocumentOperations::Multiple(_), None) => None,
    };
    if let Some(operation) = operation {
        let root = match operation.node.ty {
            OperationType::Query => Some(types.query.as_str()),
            OperationType::Mutation => types.mutation.as_deref(),
            OperationType::Subscription => types.subscription.as_deref(),
        };
        let mut walk = Walk {
            document,
            variables,
            types,
            max_page,
            limits,
            counts: Counts { directives: operation.node.directives.len(), ..Counts::default() },
            spreading: Vec::new(),
            introspecting: false,
            lists: 0,
            introspection_items: 1,
            fan_out: None,
        };
        let depth = walk.selection_set(&operation.node.selection_set.node, root.unwrap_or(""), 1, 1, true)?;
        walk.counts.depth = depth;
        walk.over()?;
        cost = cost.max(walk.counts.cost);
    }
    Ok(cost)
}

/// The operation of a document of several that runs, alone with the fragments it spreads
/// (each looked into once): what the hub validates, checks and runs, so that the other
/// operations of a document cost nothing beyond their parsing (a thousand operations
/// spreading one fan-out once took seconds, each validated in full). `Ok(None)`: the
/// document holds one operation, and is used as it is. `Err`: the name matches none of
/// them, or several and no name (async-graphql's own messages).
pub(crate) fn only_selected(
    document: &ExecutableDocument,
    name: Option<&str>,
) -> Result<Option<ExecutableDocument>, String> {
    fn spread<'a>(document: &'a ExecutableDocument, set: &'a SelectionSet, used: &mut HashSet<&'a Name>) {
        for item in &set.items {
            match &item.node {
                Selection::Field(f) => spread(document, &f.node.selection_set.node, used),
                Selection::InlineFragment(f) => spread(document, &f.node.selection_set.node, used),
                Selection::FragmentSpread(s) => {
                    let name = &s.node.fragment_name.node;
                    if let Some(fragment) = document.fragments.get(name)
                        && used.insert(name)
                    {
                        spread(document, &fragment.node.selection_set.node, used);
                    }
                }
            }
        }
    }
    let DocumentOperations::Multiple(operations) = &document.operations else { return Ok(None) };
    if operations.len() == 1 {
        return Ok(None);
    }
    let Some(name) = name else { return Err("Operation name required in request.".to_owned()) };
    let Some((key, operation)) = operations.get_key_value(name) else {
        return Err(format!(r#"Unknown operation named "{name}""#));
    };
    let mut used = HashSet::new();
    spread(document, &operation.node.selection_set.node, &mut used);
    Ok(Some(ExecutableDocument {
        operations: DocumentOperations::Multiple([(key.clone(), operation.clone())].into_iter().collect()),
        fragments: document
            .fragments
            .iter()
            .filter(|(n, _)| used.contains(n))
            .map(|(n, f)| (n.clone(), f.clone()))
            .collect(),
    }))
}

/// Whether any operation of `document` asks for `__schema` or `__type` (at its root,
/// where they live, fragments included). Each fragment is looked into once, however
/// often it is spread: the work is bounded by the document's size (a fragment spreading
/// the next one twice, 26 deep, once took 2^26 steps here, before any limit).
pub(crate) fn introspects(document: &ExecutableDocument) -> bool {
    fn at_root<'a>(document: &'a ExecutableDocument, set: &'a SelectionSet, seen: &mut HashSet<&'a Name>) -> bool {
        set.items.iter().any(|item| match &item.node {
            Selection::Field(f) => matches!(f.node.name.node.as_str(), "__schema" | "__type"),
            Selection::InlineFragment(f) => at_root(document, &f.node.selection_set.node, seen),
            Selection::FragmentSpread(s) => {
                let name = &s.node.fragment_name.node;
                match document.fragments.get(name) {
                    Some(fragment) if seen.insert(name) => at_root(document, &fragment.node.selection_set.node, seen),
                    _ => false,
                }
            }
        })
    }
    let operations: Vec<_> = match &document.operations {
        DocumentOperations::Single(op) => vec![op],
        DocumentOperations::Multiple(ops) => ops.values().collect(),
    };
    let mut seen = HashSet::new();
    operations.iter().any(|op| at_root(document, &op.node.selection_set.node, &mut seen))
}

#[derive(Debug, Default)]
struct Counts {
    depth: usize,
    aliases: usize,
    root_fields: usize,
    directives: usize,
    cost: u64,
    /// Selections visited: bounds the work of a document built to expand exponentially.
    visited: usize,
    /// The size of the introspection answer, at most (lists at their longest).
    introspection: u64,
}

/// Selections visited before the walk gives up on a document (it is then over the cost
/// limit in all but name).
const MAX_VISITED: usize = 100_000;

/// The depth introspection may reach: tools' standard introspection query nests type
/// references (`ofType`) through fragments past the usual limit (16 levels for
/// graphql-js's, more with deeper type references). Its cost is still counted.
const INTROSPECTION_DEPTH: usize = 32;

/// How many lists introspection may nest: graphql-js's query reads `types`, their
/// `fields` and those fields' `args` (three). A fourth multiplies the answer by a list of
/// the whole schema again: `possibleTypes { interfaces { possibleTypes { … } } }` once
/// answered gigabytes.
const INTROSPECTION_LISTS: usize = 3;

/// The most items an introspection answer may hold, counted with each list as long as
/// the longest of its kind in the viewer's schema (every type, the most fields of any
/// type, …): an upper bound of the answer's size, known before it is built. graphql-js's
/// query counts about a fifth of it on the whole schema (365,000).
pub(crate) const INTROSPECTION_COST: u64 = 2_000_000;

struct Walk<'a> {
    document: &'a ExecutableDocument,
    variables: &'a Variables,
    /// The viewer's schema: page sizes' defaults, and the type of each field.
    types: &'a Types,
    max_page: u64,
    limits: &'a Limits,
    counts: Counts,
    /// Fragments being expanded (a cycle is validation's to report; it stops here).
    spreading: Vec<&'a Name>,
    /// Inside `__schema` or `__type`, held to [`INTROSPECTION_DEPTH`] instead.
    introspecting: bool,
    /// Introspection lists around the selection being walked.
    lists: usize,
    /// How many times the selection being walked is answered, at most: the product of
    /// the introspection lists around it.
    introspection_items: u64,
    /// The longest introspection list of each kind, found at the first one.
    fan_out: Option<FanOut>,
}

/// The longest list of each kind introspection can answer with in one viewer's schema.
#[derive(Debug, Clone, Copy)]
struct FanOut {
    types: u64,
    directives: u64,
    fields: u64,
    input_fields: u64,
    enum_values: u64,
    possible_types: u64,
    interfaces: u64,
    args: u64,
}

impl FanOut {
    fn of(types: &Types) -> FanOut {
        use async_graphql::registry::MetaType as T;
        let most = |f: &dyn Fn(&T) -> usize| types.types.values().map(f).max().unwrap_or(0) as u64;
        let field_args = types
            .types
            .values()
            .flat_map(|t| t.fields().into_iter().flat_map(|fs| fs.values()))
            .map(|f| f.args.len())
            .chain(types.directives.values().map(IndexMap::len))
            .max()
            .unwrap_or(0) as u64;
        FanOut {
            types: types.types.len() as u64,
            directives: types.directives.len() as u64,
            fields: most(&|t| t.fields().map_or(0, |fs| fs.len())),
            input_fields: most(&|t| match t {
                T::InputObject { input_fields, .. } => input_fields.len(),
                _ => 0,
            }),
            enum_values: most(&|t| match t {
                T::Enum { enum_values, .. } => enum_values.len(),
                _ => 0,
            }),
            possible_types: most(&|t| match t {
                T::Interface { possible_types, .. } | T::Union { possible_types, .. } => possible_types.len(),
                _ => 0,
            }),
            interfaces: most(&|t| match t {
                T::Object { .. } | T::Interface { .. } => {
                    types.types.values().filter(|i| i.possible_types().is_some_and(|p| p.contains(t.name()))).count()
                }
                _ => 0,
            }),
            args: field_args,
        }
    }

    /// The longest list an introspection field answers with: a list of a kind not named
    /// here (directive `locations`) at most as long as the list of every type.
    fn of_field(&self, name: &str) -> u64 {
        match name {
            "types" => self.types,
            "directives" => self.directives,
            "fields" => self.fields,
            "inputFields" => self.input_fields,
            "enumValues" => self.enum_values,
            "possibleTypes" => self.possible_types,
            "interfaces" => self.interfaces,
            "args" => self.args,
            _ => self.types,
        }
        .max(1)
    }
}

impl<'a> Walk<'a> {
    /// The depth of `set` (of type `parent`, "" when it is not in the viewer's schema), at
    /// `depth`, inside lists multiplying its cost by `multiplier`.
    fn selection_set(
        &mut self,
        set: &'a SelectionSet,
        parent: &'a str,
        depth: usize,
        multiplier: u64,
        root: bool,
    ) -> Result<usize, Exceeded> {
        let mut deepest = depth.saturating_sub(1);
        for item in &set.items {
            self.counts.visited += 1;
            if self.counts.visited > MAX_VISITED {
                return Err(Exceeded {
                    limit: "cost",
                    max: self.limits.cost,
                    found: self.counts.cost.max(self.limits.cost.saturating_add(1)),
                });
            }
            let reached = match &item.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    self.counts.directives += field.directives.len();
                    self.counts.aliases += usize::from(field.alias.is_some());
                    self.counts.root_fields += usize::from(root);
                    self.counts.cost = self.counts.cost.saturating_add(multiplier);
                    if self.introspecting {
                        self.counts.introspection = self.counts.introspection.saturating_add(self.introspection_items);
                    }
                    self.over()?;
                    if field.selection_set.node.items.is_empty() {
                        depth
                    } else {
                        let defined = self.types.types.get(parent).and_then(|t| t.field_by_name(&field.name.node));
                        // An introspection list: its items multiply the answer.
                        let list = self.introspecting
                            && parent.starts_with("__")
                            && defined.is_some_and(|f| f.ty.starts_with('['));
                        let outer_items = self.introspection_items;
                        if list {
                            self.lists += 1;
                            if self.lists > INTROSPECTION_LISTS {
                                let (max, found) = (INTROSPECTION_LISTS as u64, self.lists as u64);
                                return Err(Exceeded { limit: "introspection lists", max, found });
                            }
                            let fan_out = *self.fan_out.get_or_insert_with(|| FanOut::of(self.types));
                            self.introspection_items =
                                self.introspection_items.saturating_mul(fan_out.of_field(&field.name.node));
                        }
                        let ty = defined.map_or("", |f| MetaTypeName::concrete_typename(&f.ty));
                        let default = defined
                            .and_then(|f| f.args.get("first"))
                            .and_then(|a| a.default_value.as_deref())
                            .and_then(|d| d.parse().ok());
                        let inner = multiplier.saturating_mul(self.page_size(default, &field.arguments));
                        let introspection = root && matches!(field.name.node.as_str(), "__schema" | "__type");
                        self.introspecting |= introspection;
                        let reached = self.selection_set(&field.selection_set.node, ty, depth + 1, inner, false)?;
                        if list {
                            self.lists -= 1;
                            self.introspection_items = outer_items;
                        }
                        if introspection {
                            self.introspecting = false;
                            // Within its own limit, which the walk below held it to.
                            reached.min(self.limits.depth)
                        } else {
                            reached
                        }
                    }
                }
                Selection::InlineFragment(fragment) => {
                    self.counts.directives += fragment.node.directives.len();
                    let on = fragment.node.type_condition.as_ref().map_or(parent, |c| c.node.on.node.as_str());
                    self.selection_set(&fragment.node.selection_set.node, on, depth + 1, multiplier, root)?
                }
                Selection::FragmentSpread(spread) => {
                    self.counts.directives += spread.node.directives.len();
                    let name = &spread.node.fragment_name.node;
                    match self.document.fragments.get(name) {
                        Some(fragment) if !self.spreading.contains(&name) => {
                            self.spreading.push(name);
                            let on = fragment.node.type_condition.node.on.node.as_str();
                            let reached =
                                self.selection_set(&fragment.node.selection_set.node, on, depth + 1, multiplier, root)?;
                            self.spreading.pop();
                            reached
                        }
                        _ => depth,
                    }
                }
            };
            deepest = deepest.max(reached);
            let max = if self.introspecting { self.limits.depth.max(INTROSPECTION_DEPTH) } else { self.limits.depth };
            if deepest > max {
                return Err(Exceeded { limit: "depth", max: max as u64, found: deepest as u64 });
            }
        }
        Ok(deepest)
    }

    /// How many items a field's list holds at most: its `first` or `last`, else the
    /// default for `first` in the viewer's schema, else one (not a list, a short one, or
    /// a field the viewer's schema does not have).
    fn page_size(&self, default: Option<u64>, arguments: &[(Positioned<Name>, Positioned<Value>)]) -> u64 {
        let given =
            arguments.iter().find(|(name, _)| name.node == "first" || name.node == "last").map(
                |(_, value)| match &value.node {
                    Value::Number(n) => n.as_u64(),
                    Value::Variable(v) => match self.variables.get(v) {
                        Some(ConstValue::Number(n)) => n.as_u64(),
                        _ => None,
                    },
                    _ => None,
                },
            );
        match given {
            Some(Some(n)) => n.min(self.max_page),
            // A page size that is not a number fails at execution; count the most.
            Some(None) => self.max_page,
            None => default.unwrap_or(1),
        }
    }

    fn over(&self) -> Result<(), Exceeded> {
        let c = &self.counts;
        let l = self.limits;
        let exceeded = |limit, max: usize, found: usize| Exceeded { limit, max: max as u64, found: found as u64 };
        if c.aliases > l.aliases {
            return Err(exceeded("aliases", l.aliases, c.aliases));
        }
        if c.root_fields > l.root_fields {
            return Err(exceeded("root fields", l.root_fields, c.root_fields));
        }
        if c.directives > l.directives {
            return Err(exceeded("directives", l.directives, c.directives));
        }
        if c.introspection > INTROSPECTION_COST {
            return Err(Exceeded { limit: "introspection size", max: INTROSPECTION_COST, found: c.introspection });
        }
        if c.cost > l.cost {
            return Err(Exceeded { limit: "cost", max: l.cost, found: c.cost });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits { depth: 6, aliases: 3, root_fields: 4, directives: 4, cost: 1_000 }
    }

    /// The types of the schema of a viewer who sees every class.
    fn everything() -> Types {
        crate::graphql::privacy::viewer::build(None, 0).types
    }

    fn run(query: &str, variables: serde_json::Value) -> Result<u64, Exceeded> {
        let document = async_graphql::parser::parse_query(query).expect("parses");
        let variables = Variables::from_json(variables);
        check(&document, None, &variables, &everything(), 100, &limits())
    }

    fn limit(query: &str) -> Option<&'static str> {
        run(query, serde_json::json!({})).err().map(|e| e.limit)
    }

    #[test]
    fn tokens_are_counted_as_graphql_reads_them() {
        let query = r#"query Q($id: ID! = "a, b # c") { # a comment
            customer(id: $id) { ...F orders(first: -1.5e+3) { id } } } """block "quoted" \""" """"#;
        // query Q ( $ id : ID ! = "..." ) { customer ( id : $ id ) { ... F orders ( first : -1.5e+3 ) { id } } }
        // """..."""
        assert_eq!(tokens(query, 100), Ok(34));
        assert_eq!(tokens(query, 33), Err(Exceeded { limit: "tokens", max: 33, found: 34 }));
        assert_eq!(tokens("  , , # nothing", 0), Ok(0));
        assert_eq!(tokens(&"{a}".repeat(1_000_000), 10).map_err(|e| e.found), Err(11));
        // Brackets nested past the parser's depth: refused before parsing.
        let deep = format!("{{ customers(filter: {}) {{ id }} }}", "[".repeat(400));
        assert_eq!(tokens(&deep, 15_000).map_err(|e| e.limit), Err("nesting"));
        assert!(tokens(&format!("{}{}", "{".repeat(100), "}".repeat(100)), 15_000).is_ok());
    }

    #[test]
    fn cost_multiplies_by_page_sizes() {
        // 1 + 20 + 20 + 20 + 20·10 = 261 with the defaults; 1 + 50 + 50 + 50 + 50·30 is over.
        let orders = "{ customers { edges { node { orders { totalCount } } } } }";
        assert_eq!(run(orders, serde_json::json!({})), Ok(261));
        let over = run(
            "query($n: Int!) { customers(first: $n) { edges { node { orders(first: 30) { totalCount } } } } }",
            serde_json::json!({ "n": 50 }),
        );
        assert_eq!(over.map_err(|e| (e.limit, e.max)), Err(("cost", 1_000)));
        // A page size that is not a number counts as the largest page.
        let odd = "{ customers(first: \"x\") { edges { node { orders(first: 100) { totalCount } } } } }";
        assert_eq!(limit(odd), Some("cost"));
    }

    #[test]
    fn fragments_count_where_they_are_spread() {
        // Aliases: three are allowed, the fragment spread twice brings four.
        assert_eq!(limit("{ a: customers { id } b: customers { id } c: customers { id } }"), None);
        assert_eq!(
            limit("{ ...F ...F } fragment F on Query { a: customers { id } b: customers { id } }"),
            Some("aliases")
        );
        // Depth: nested inline fragments count as levels, fields or not.
        let nested = |n: usize| format!("{{ customers {{ {} id {} }} }}", "... on Customer {".repeat(n), "}".repeat(n));
        assert_eq!(limit(&nested(3)), None);
        assert_eq!(limit(&nested(6)), Some("depth"));
        // A fragment cycle is left to validation, without looping here.
        assert_eq!(limit("{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }"), None);
    }

    #[test]
    fn root_fields_and_directives_are_counted() {
        assert_eq!(
            limit("{ customers { id } customers { id } customers { id } customers { id } customers { id } }"),
            Some("root fields")
        );
        let skips = "{ customers { id @skip(if: false) id @skip(if: false) id @skip(if: false) id @skip(if: false) id @skip(if: false) } }";
        assert_eq!(limit(skips), Some("directives"));
    }

    #[test]
    fn a_hidden_field_costs_what_an_unknown_name_costs() {
        use crate::auth::{Role, Viewer};
        let table = crate::graphql::privacy::PrivacyTable::from_sdl(&crate::graphql::sdl()).expect("the schema");
        let policy = crate::policy::Policy::load(None, &table.value_fields()).expect("the shipped policy");
        let hidden = policy.access(&Viewer::with_role(Role::Partner, Some("acme"))).hidden_set();
        let partner = crate::graphql::privacy::viewer::build(None, hidden).types;
        let generous = Limits { depth: 100, aliases: 100, root_fields: 100, directives: 100, cost: u64::MAX };
        let cost = |field: &str, types: &Types| {
            let query = format!("{{ customers(first: 40) {{ edges {{ node {{ {field} {{ totalCount }} }} }} }} }}");
            let document = async_graphql::parser::parse_query(&query).expect("parses");
            check(&document, None, &Variables::default(), types, 100, &generous).expect("within")
        };
        // Notes (internal) and orders (financial) are not in a partner's schema: their
        // page sizes do not count, as for a name that does not exist.
        assert_eq!(cost("notes", &partner), cost("nopes", &partner));
        assert_eq!(cost("orders", &partner), cost("nopes", &partner));
        // Whoever sees them pays for their default pages of ten.
        assert_eq!(cost("notes", &everything()), 1 + 40 + 40 + 40 + 400);
        assert_eq!(cost("nopes", &everything()), 1 + 40 + 40 + 40 + 40);
    }

    #[test]
    fn introspection_has_a_depth_limit_of_its_own() {
        // graphql-js's introspection query: a type reference seven `ofType`s deep, in a
        // fragment inside a fragment (depth 16 as counted here).
        let of_type = (0..7).fold(String::from("name"), |inner, _| format!("kind name ofType {{ {inner} }}"));
        let query = format!(
            "{{ __schema {{ types {{ ...FullType }} }} }}
             fragment FullType on __Type {{ fields {{ type {{ ...TypeRef }} }} }}
             fragment TypeRef on __Type {{ {of_type} }}"
        );
        assert_eq!(limit(&query), None);
        let too_deep = (0..40).fold(String::from("name"), |inner, _| format!("ofType {{ {inner} }}"));
        assert_eq!(limit(&format!("{{ __type(name: \"Customer\") {{ {too_deep} }} }}")), Some("depth"));
        // Elsewhere the usual limit holds, also beside introspection.
        let deep = (0..6).fold(String::from("id"), |inner, _| format!("orders(first: 1) {{ {inner} }}"));
        assert_eq!(
            limit(&format!("{{ __schema {{ types {{ name }} }} customers(first: 1) {{ {deep} }} }}")),
            Some("depth")
        );
    }

    #[test]
    fn introspection_answers_are_bounded_by_their_size() {
        let generous = Limits { depth: 15, aliases: 30, root_fields: 30, directives: 30, cost: u64::MAX };
        let walk = |q: &str| {
            let document = async_graphql::parser::parse_query(q).expect("parses");
            check(&document, None, &Variables::default(), &everything(), 100, &generous).map_err(|e| e.limit)
        };
        // What tools send passes, with room.
        let graphql_js = include_str!("../../../tests/fixtures/introspection.graphql");
        assert_eq!(walk(graphql_js).map(|_| ()), Ok(()));
        let document = async_graphql::parser::parse_query(graphql_js).expect("parses");
        let mut bound = Walk {
            document: &document,
            variables: &Variables::default(),
            types: &everything(),
            max_page: 100,
            limits: &generous,
            counts: Counts::default(),
            spreading: Vec::new(),
            introspecting: false,
            lists: 0,
            introspection_items: 1,
            fan_out: None,
        };
        let DocumentOperations::Multiple(ops) = &document.operations else { panic!("a named operation") };
        let op = ops.values().next().expect("one");
        bound.selection_set(&op.node.selection_set.node, "Query", 1, 1, true).expect("within");
        let size = bound.counts.introspection;
        assert!(size > 0 && size * 4 < INTROSPECTION_COST, "graphql-js's query: {size}");
        // A fourth list (each hop once multiplied the answer by four).
        let hops = |n: usize| {
            let inner = (0..n).fold(String::from("name"), |inner, i| {
                format!("{} {{ {inner} }}", if i % 2 == 0 { "possibleTypes" } else { "interfaces" })
            });
            format!("{{ __type(name: \"Node\") {{ {inner} }} }}")
        };
        assert_eq!(walk(&hops(3)).map(|_| ()), Ok(()));
        assert_eq!(walk(&hops(4)), Err("introspection lists"));
        assert_eq!(walk(&hops(15)), Err("introspection lists"));
        // Through fragments, and through `__schema` too.
        let spread = "{ __schema { types { ...A } } } fragment A on __Type { fields { type { ...B } } }
                      fragment B on __Type { interfaces { possibleTypes { name } } }";
        assert_eq!(walk(spread), Err("introspection lists"));
        // Three lists, the middle one aliased thirty times: each alias is answered in full.
        let full = "args { name description defaultValue type { ...TypeRef } }";
        let aliases = (0..30).map(|i| format!("f{i}: fields {{ {full} }}")).collect::<Vec<_>>().join(" ");
        let type_ref = (0..7).fold(String::from("name"), |inner, _| format!("kind name ofType {{ {inner} }}"));
        let wide = format!("{{ __schema {{ types {{ {aliases} }} }} }} fragment TypeRef on __Type {{ {type_ref} }}");
        assert_eq!(walk(&wide), Err("introspection size"));
    }

    #[test]
    fn introspection_is_found_through_fragments() {
        let found = |q: &str| introspects(&async_graphql::parser::parse_query(q).expect("parses"));
        assert!(found("{ __schema { types { name } } }"));
        assert!(found("query A { __typename } query B { ... on Query { __type(name: \"X\") { name } } }"));
        assert!(found("{ ...F } fragment F on Query { s: __schema { queryType { name } } }"));
        assert!(!found("{ __typename customers { id } }"));
        assert!(!found("{ ...A } fragment A on Query { ...A }"));
        // Each fragment spreading the next one twice: 2^60 spreads, looked into once each.
        let mut doubling = String::from("{ ...F0 }");
        for i in 0..60 {
            doubling += &format!(" fragment F{i} on Query {{ ...F{next} ...F{next} }}", next = i + 1);
        }
        assert!(!found(&(doubling.clone() + " fragment F60 on Query { __typename }")));
        assert!(found(&(doubling + " fragment F60 on Query { __schema { types { name } } }")));
    }

    #[test]
    fn only_the_operation_that_runs_is_walked() {
        // Each operation spreads a fragment of 37,000 selections: walked one by one, 1,000
        // of them once took seconds per request.
        let fan =
            (0..5).fold(String::from("customers { id }"), |inner, _| format!("...on Query {{ {} }}", inner.repeat(8)));
        let operations: String = (0..1000).map(|i| format!("query Op{i} {{ ...F }} ")).collect();
        let query = format!("{operations} fragment F on Query {{ {fan} }}");
        let document = async_graphql::parser::parse_query(&query).expect("parses");
        let generous = Limits { depth: 100, aliases: 100, root_fields: usize::MAX, directives: 100, cost: u64::MAX };
        let walk = |name| check(&document, name, &Variables::default(), &everything(), 100, &generous);
        let one = async_graphql::parser::parse_query(format!("query Op7 {{ ...F }} fragment F on Query {{ {fan} }}"))
            .expect("parses");
        let alone = check(&one, None, &Variables::default(), &everything(), 100, &generous);
        assert!(alone.as_ref().is_ok_and(|cost| *cost > 30_000), "{alone:?}");
        assert_eq!(walk(Some("Op7")), alone);
        // No name among several: nothing runs, nothing is walked.
        assert_eq!(walk(None), Ok(0));
        assert_eq!(walk(Some("Nope")), Ok(0));
    }

    #[test]
    fn the_operation_that_runs_is_kept_alone_with_its_fragments() {
        let parse = |q: &str| async_graphql::parser::parse_query(q).expect("parses");
        let document = parse(
            "query A { ...X } query B { ...Y } fragment X on Query { ...Z } fragment Y on Query { __typename }
             fragment Z on Query { __typename }",
        );
        let kept = only_selected(&document, Some("A")).expect("A").expect("pruned");
        let DocumentOperations::Multiple(ops) = &kept.operations else { panic!("named") };
        assert_eq!(ops.keys().map(|k| k.as_str()).collect::<Vec<_>>(), ["A"]);
        let mut fragments: Vec<&str> = kept.fragments.keys().map(|k| k.as_str()).collect();
        fragments.sort_unstable();
        assert_eq!(fragments, ["X", "Z"]);
        assert_eq!(only_selected(&document, None).err().as_deref(), Some("Operation name required in request."));
        assert_eq!(only_selected(&document, Some("C")).err().as_deref(), Some(r#"Unknown operation named "C""#));
        // One operation: the document as it is, unused fragments and all (validation's to refuse).
        assert!(
            only_selected(&parse("query A { __typename } fragment U on Query { __typename }"), None)
                .expect("one")
                .is_none()
        );
        assert!(only_selected(&parse("{ __typename }"), Some("A")).expect("anonymous").is_none());
    }

    #[test]
    fn an_exponential_document_stops_early() {
        // Each fragment spreads the next one ten times: 10^8 fields if expanded.
        let mut query = String::from("{ ...F0 }");
        for i in 0..8 {
            query += &format!(" fragment F{i} on Query {{ {} }}", format!("...F{} ", i + 1).repeat(10));
        }
        query += " fragment F8 on Query { customers { id } }";
        let document = async_graphql::parser::parse_query(&query).expect("parses");
        let generous = Limits { depth: 100, aliases: 100, root_fields: usize::MAX, directives: 100, cost: u64::MAX };
        let found = check(&document, None, &Variables::default(), &everything(), 100, &generous);
        assert_eq!(found.map_err(|e| e.limit), Err("cost"));
    }
}

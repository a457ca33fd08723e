//! `#[classified]`: a field's privacy class, declared once, next to the field.
//!
//! Put it above `#[Object]` on a resolver `impl`; inside, mark each field that carries
//! customer data with its class (and mask format, where it has one), or each lookup with
//! the class of the key it looks up by:
//!
//! ```ignore
//! #[classified]
//! #[Object]
//! impl Customer {
//!     #[class(contact, mask = email)]
//!     async fn email(&self, ctx: &Context<'_>) -> Result<Option<String>> { .. }
//! }
//!
//! #[classified]
//! #[Object]
//! impl CustomerQuery {
//!     #[lookup(contact)]
//!     async fn customer_by_email(&self, ctx: &Context<'_>, email: String) -> Result<Option<Customer>> { .. }
//! }
//! ```
//!
//! From that one line follow, so that none of them can be forgotten:
//! - the `@privacy(class:, mask:)` (or `@lookup(class:)`) directive in the schema, which the
//!   policy guard reads to reject documents that name hidden fields;
//! - the field's visibility: absent from introspection for viewers the class is hidden from;
//! - the policy at resolution: the value is masked in its format where the policy masks
//!   the class, and never resolved where it hides it (validation turns such documents
//!   away before; the resolver refuses regardless);
//! - for the classes the audit log records (contact, sensitive), the audit: the value,
//!   when shown unmasked and not null, is noted for the customer the object belongs to
//!   (its type must implement `Subject`, or it does not compile). A compile-time
//!   assertion keeps this list of audited classes equal to `PrivacyClass::audited`.
//!
//! The expansion names `crate::graphql::privacy`: the attribute is for c360's own crate.

use proc_macro::TokenStream;
use proc_macro2::Span;
use quote::{format_ident, quote};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{
    Error, Expr, FnArg, ImplItem, ImplItemFn, ItemImpl, Meta, ReturnType, Token, Type, parse_macro_input, parse_quote,
};

/// The privacy classes, as written in the attribute (`crate::policy::PrivacyClass`).
const CLASSES: [&str; 10] = [
    "identity",
    "contact",
    "sensitive",
    "financial",
    "service",
    "marketing",
    "internal",
    "insight",
    "timing",
    "receipt",
];

/// The mask formats, as written in the attribute (`crate::policy::MaskFormat`).
const MASKS: [&str; 7] = ["email", "phone", "initials", "city_country", "remove", "keep", "month"];

/// The classes whose unmasked reads are audited; checked against `PrivacyClass::audited`
/// at compile time in every expansion.
const AUDITED: [&str; 2] = ["contact", "sensitive"];

#[proc_macro_attribute]
pub fn classified(attr: TokenStream, item: TokenStream) -> TokenStream {
    if !attr.is_empty() {
        return Error::new(Span::call_site(), "#[classified] takes no arguments").to_compile_error().into();
    }
    let mut imp = parse_macro_input!(item as ItemImpl);
    let type_name = match &*imp.self_ty {
        Type::Path(p) => p.path.segments.last().map(|s| s.ident.to_string()).unwrap_or_default(),
        other => return Error::new(other.span(), "#[classified] needs a named type").to_compile_error().into(),
    };
    for item in &mut imp.items {
        if let ImplItem::Fn(f) = item
            && let Err(e) = rewrite(f, &type_name)
        {
            return e.to_compile_error().into();
        }
    }
    quote!(#imp).into()
}

/// `snake_case` → `PascalCase`.
fn pascal(name: &str) -> String {
    name.split('_').map(|w| w[..1].to_uppercase() + &w[1..]).collect()
}

/// `snake_case` → `camelCase` (async-graphql's field names).
fn camel(name: &str) -> String {
    let p = pascal(name);
    p[..1].to_lowercase() + &p[1..]
}

/// An identifier argument (`contact`, `mask = email`), checked against `allowed`.
fn ident_in(expr: &Expr, allowed: &[&str], what: &str) -> syn::Result<String> {
    if let Expr::Path(p) = expr
        && let Some(ident) = p.path.get_ident()
    {
        let name = ident.to_string();
        if allowed.contains(&name.as_str()) {
            return Ok(name);
        }
    }
    Err(Error::new(expr.span(), format!("expected a {what}: one of {}", allowed.join(", "))))
}

/// Reads `#[class(..)]` or `#[lookup(..)]` off one resolver and puts in its place what
/// follows from it.
fn rewrite(f: &mut ImplItemFn, type_name: &str) -> syn::Result<()> {
    let is_ours = |a: &syn::Attribute| a.path().is_ident("class") || a.path().is_ident("lookup");
    let Some(pos) = f.attrs.iter().position(is_ours) else { return Ok(()) };
    let attr = f.attrs.remove(pos);
    if let Some(twice) = f.attrs.iter().find(|a| is_ours(a)) {
        return Err(Error::new(twice.span(), "a field has one privacy class"));
    }
    let lookup = attr.path().is_ident("lookup");
    let args = attr.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated)?;
    let mut args = args.into_iter();
    let class = match args.next() {
        Some(Meta::Path(p)) => ident_in(&parse_quote!(#p), &CLASSES, "privacy class")?,
        _ => return Err(Error::new(attr.span(), "expected the privacy class first, e.g. #[class(contact)]")),
    };
    let mut mask = None;
    for arg in args {
        match arg {
            Meta::NameValue(nv) if nv.path.is_ident("mask") && !lookup => {
                mask = Some(ident_in(&nv.value, &MASKS, "mask format")?);
            }
            other => return Err(Error::new(other.span(), "unexpected argument (only `mask = ..` on a #[class])")),
        }
    }

    let privacy = quote!(crate::graphql::privacy);
    let class_variant = format_ident!("{}", pascal(&class));
    let class_expr = quote!(#privacy::PrivacyClass::#class_variant);
    let directive = if lookup {
        quote!(#privacy::lookup::apply(#class_expr))
    } else {
        let mask = match &mask {
            Some(m) => {
                let m = format_ident!("{}", pascal(m));
                quote!(::std::option::Option::Some(#privacy::MaskFormat::#m))
            }
            None => quote!(::std::option::Option::None),
        };
        quote!(#privacy::privacy::apply(#class_expr, #mask))
    };
    let extra = quote!(directive = #directive);
    match f.attrs.iter_mut().find(|a| a.path().is_ident("graphql")) {
        Some(graphql) => {
            let Meta::List(list) = &mut graphql.meta else {
                return Err(Error::new(graphql.span(), "expected #[graphql(..)]"));
            };
            let tokens = &list.tokens;
            list.tokens = quote!(#tokens, #extra);
        }
        None => f.attrs.push(parse_quote!(#[graphql(#extra)])),
    }
    if lookup {
        return Ok(());
    }

    let audited = AUDITED.contains(&class.as_str());
    let message = format!("the audited classes of #[class] differ from PrivacyClass::audited ({class})");
    let check: syn::Stmt = if audited {
        parse_quote!(
            const _: () = assert!(crate::policy::PrivacyClass::#class_variant.audited(), #message);
        )
    } else {
        parse_quote!(
            const _: () = assert!(!crate::policy::PrivacyClass::#class_variant.audited(), #message);
        )
    };

    // The policy's decision needs the request: use the resolver's context, or take one.
    let ctx = f.sig.inputs.iter().find_map(|arg| match arg {
        FnArg::Typed(t) if is_context(&t.ty) => match &*t.pat {
            syn::Pat::Ident(i) => Some(i.ident.clone()),
            _ => None,
        },
        _ => None,
    });
    let ctx = match ctx {
        Some(ctx) => ctx,
        None => {
            let ctx = format_ident!("__c360_ctx");
            f.sig.inputs.insert(1, parse_quote!(#ctx: &async_graphql::Context<'_>));
            ctx
        }
    };
    let ReturnType::Type(_, ret) = &f.sig.output else {
        return Err(Error::new(f.sig.span(), "a classified field returns its value"));
    };
    let ret = ret.clone();
    // A hidden field is never resolved, so the resolver can fail: a value that is not a
    // `Result` becomes one (the schema's type stays the same).
    let fallible = is_result(&ret);
    if !fallible {
        f.sig.output = parse_quote!(-> async_graphql::Result<#ret>);
    }
    let decision = quote!(crate::policy::Decision);
    let refuse = match &mask {
        Some(_) => quote!(__decision == #decision::Hide),
        // Without a mask format the policy never masks it (a policy that would is refused
        // at start); were it asked to, the field is not shown.
        None => quote!(__decision != #decision::Show),
    };
    let masking = match &mask {
        Some(m) => {
            let m = format_ident!("{}", pascal(m));
            quote!(
                let __value = if __decision == #decision::Mask {
                    #privacy::Masked::masked(__value, crate::policy::MaskFormat::#m)
                } else {
                    __value
                };
            )
        }
        None => quote!(),
    };
    let audit = if audited {
        let name = camel(&f.sig.ident.to_string());
        let name = if type_name == "Customer" {
            name
        } else {
            format!("{}{}.{name}", type_name[..1].to_lowercase(), &type_name[1..])
        };
        // A mask that keeps the value (a birth year) shows it as it is: audited too.
        let keeps = mask.as_deref() == Some("keep");
        quote!(
            #privacy::note_read(
                #ctx,
                #class_expr,
                #keeps,
                #privacy::Subject::subject_id(self),
                #name,
                #privacy::Present::present(&__value),
            );
        )
    } else {
        quote!()
    };
    let result = if fallible { quote!(__value) } else { quote!(::std::result::Result::Ok(__value)) };
    let body = &f.block;
    f.block = parse_quote!({
        #check
        let __decision = #privacy::decision(#ctx, #class_expr);
        if #refuse {
            return ::std::result::Result::Err(::std::convert::Into::into(#privacy::not_shown()));
        }
        let __value: #ret = async #body.await;
        #audit
        #masking
        #result
    });
    Ok(())
}

/// `Result<..>` (any path ending in `Result`).
fn is_result(ty: &Type) -> bool {
    let Type::Path(p) = ty else { return false };
    p.path.segments.last().is_some_and(|s| s.ident == "Result")
}

/// `&Context<'_>` (any path ending in `Context`).
fn is_context(ty: &Type) -> bool {
    let Type::Reference(r) = ty else { return false };
    let Type::Path(p) = &*r.elem else { return false };
    p.path.segments.last().is_some_and(|s| s.ident == "Context")
}

//! `#[derive(Model)]`: [`expand`] checks the struct into a [`ModelDef`],
//! then generates each item from it: the typed field constants
//! ([`field_consts`]), `impl odm::Record` ([`record_impl`]) and
//! `impl odm::Model` ([`model_impl`], its table holding one [`column_def`]
//! per column).

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{
    Data, DeriveInput, Error, Field, Fields, FieldsNamed, GenericArgument, Ident, PathArguments,
    Result, Type,
};

use crate::attrs::{FieldAttrs, ModelAttrs};

/// A field mapped to a column.
struct ColumnField {
    ident: Ident,
    ty: Type,
    attrs: FieldAttrs,
    column: String,
}

/// The `Option<T>` inner type, if `ty` is an `Option`.
fn option_inner(ty: &Type) -> Option<&Type> {
    let Type::Path(path) = ty else { return None };
    let last = path.path.segments.last()?;
    if last.ident != "Option" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.first()? {
        GenericArgument::Type(inner) if args.args.len() == 1 => Some(inner),
        _ => None,
    }
}

/// The last path segment's name (`String` for `std::string::String`).
fn last_segment(ty: &Type) -> Option<String> {
    let Type::Path(path) = ty else { return None };
    path.path.segments.last().map(|s| s.ident.to_string())
}

fn base_type(ty: &Type) -> &Type {
    option_inner(ty).unwrap_or(ty)
}

fn type_text(ty: &Type) -> String {
    quote!(#ty).to_string().replace(' ', "")
}

pub(crate) fn expand(input: DeriveInput) -> Result<TokenStream> {
    let def = ModelDef::parse(&input)?;
    let consts = field_consts(&def);
    let record = record_impl(&def);
    let model = model_impl(&def);
    Ok(quote! {
        #consts
        #record
        #model
    })
}

/// A struct deriving `Model`, with every attribute checked: what the
/// generated items are made from.
struct ModelDef<'a> {
    name: &'a Ident,
    attrs: ModelAttrs,
    /// `#[odm(table = "...")]`, else the struct's name in lower case.
    table_name: String,
    /// The fields mapped to columns, in order (the parent field excluded).
    columns: Vec<ColumnField>,
    /// The `#[odm(parent)]` field and its type.
    parent: Option<(Ident, Type)>,
    /// The `#[odm(primary_key)]` column; `None` exactly when the model has a
    /// parent, whose key it shares.
    key_index: Option<usize>,
}

impl<'a> ModelDef<'a> {
    /// Checks the struct's shape, its model attributes, each field and the
    /// primary key, failing at the first error (pointed at its attribute).
    fn parse(input: &'a DeriveInput) -> Result<ModelDef<'a>> {
        let name = &input.ident;
        let named = named_fields(input)?;
        let attrs = ModelAttrs::parse(&input.attrs)?;
        if attrs.drop_sql.is_some() && attrs.create_sql.is_none() {
            return Err(Error::new(
                name.span(),
                "drop_sql needs a matching create_sql",
            ));
        }
        let table_name = attrs
            .table
            .clone()
            .unwrap_or_else(|| name.to_string().to_lowercase());
        let mut def = ModelDef {
            name,
            attrs,
            table_name,
            columns: Vec::new(),
            parent: None,
            key_index: None,
        };
        for field in &named.named {
            def.add_field(field)?;
        }
        def.check_key()?;
        Ok(def)
    }

    /// Adds one field: the parent field, or a column.
    fn add_field(&mut self, field: &Field) -> Result<()> {
        let name = self.name;
        let ident = field.ident.clone().expect("named field");
        let attrs = FieldAttrs::parse(&field.attrs)?;
        if let Some(span) = attrs.parent {
            if self.parent.is_some() {
                return Err(Error::new(
                    span,
                    format!("model `{name}` has two #[odm(parent)] fields"),
                ));
            }
            if attrs.primary_key.is_some()
                || attrs.max_length.is_some()
                || attrs.column.is_some()
                || attrs.default.is_some()
                || attrs.foreign_key.is_some()
                || attrs.default_fn.is_some()
            {
                return Err(Error::new(span, "#[odm(parent)] takes no other attribute"));
            }
            self.parent = Some((ident, field.ty.clone()));
            return Ok(());
        }
        check_column_type(&field.ty, &attrs)?;
        if let Some(span) = attrs.primary_key {
            if let Some(first) = self.key_index {
                return Err(Error::new(
                    span,
                    format!(
                        "model `{name}` has two primary keys: `{}` and `{}`",
                        self.columns[first].ident.unraw(),
                        ident.unraw()
                    ),
                ));
            }
            self.key_index = Some(self.columns.len());
        }
        let column = attrs
            .column
            .clone()
            .unwrap_or_else(|| ident.unraw().to_string());
        if let Some(other) = self.columns.iter().find(|c| c.column == column) {
            return Err(Error::new(
                ident.span(),
                format!(
                    "fields `{}` and `{}` both map to column `{column}`",
                    other.ident.unraw(),
                    ident.unraw()
                ),
            ));
        }
        self.columns.push(ColumnField {
            ident,
            ty: field.ty.clone(),
            attrs,
            column,
        });
        Ok(())
    }

    /// A model has exactly one key: its own `primary_key` column or its
    /// parent's.
    fn check_key(&self) -> Result<()> {
        let name = self.name;
        match (&self.parent, self.key_index) {
            (Some((pident, _)), Some(k)) => Err(Error::new(
                self.columns[k].attrs.primary_key.unwrap_or_else(Span::call_site),
                format!("model `{name}` takes its primary key from its #[odm(parent)] field `{pident}`; remove this primary_key"),
            )),
            (None, None) => Err(Error::new(
                name.span(),
                format!(
                    "model `{name}` has no primary key; mark one field with #[odm(primary_key)]"
                ),
            )),
            _ => Ok(()),
        }
    }

    /// The position of the first own column in the model's row: after the
    /// parent's key for a child model.
    fn own_offset(&self) -> usize {
        if self.parent.is_some() {
            1
        } else {
            0
        }
    }

    /// The own primary key column of a model without a parent.
    fn key_column(&self) -> &ColumnField {
        &self.columns[self.key_index.expect("checked above")]
    }
}

/// The named fields of a non-generic struct.
fn named_fields(input: &DeriveInput) -> Result<&FieldsNamed> {
    let name = &input.ident;
    if !input.generics.params.is_empty() {
        return Err(Error::new(
            input.generics.span(),
            "odm models cannot be generic",
        ));
    }
    let Data::Struct(data) = &input.data else {
        return Err(Error::new(
            name.span(),
            "#[derive(Model)] applies to structs with named fields",
        ));
    };
    let Fields::Named(named) = &data.fields else {
        return Err(Error::new(
            name.span(),
            "#[derive(Model)] applies to structs with named fields",
        ));
    };
    Ok(named)
}

/// The column attributes that apply to some types only: `max_length` and
/// `choices` (String), `json` (serde_json::Value, Json<T>), `default_fn` (Option).
fn check_column_type(ty: &Type, attrs: &FieldAttrs) -> Result<()> {
    let base_name = last_segment(base_type(ty));
    if let Some((_, span)) = attrs.max_length {
        if base_name.as_deref() != Some("String") {
            return Err(Error::new(
                span,
                format!(
                    "max_length applies to String fields, not `{}`",
                    type_text(ty)
                ),
            ));
        }
    }
    if let Some(span) = attrs.json {
        if !matches!(base_name.as_deref(), Some("Value" | "Json")) {
            return Err(Error::new(
                span,
                format!(
                    "json applies to serde_json::Value and odm::types::Json<T> fields, not `{}`",
                    type_text(ty)
                ),
            ));
        }
    }
    if let Some((_, span)) = &attrs.choices {
        if base_name.as_deref() != Some("String") {
            return Err(Error::new(
                *span,
                format!("choices applies to String fields, not `{}`", type_text(ty)),
            ));
        }
    }
    if let Some((_, span)) = &attrs.default_fn {
        if option_inner(ty).is_none() {
            return Err(Error::new(
                *span,
                format!(
                    "default_fn applies to Option fields (None is the unset value it fills), not `{}`",
                    type_text(ty)
                ),
            ));
        }
    }
    Ok(())
}

/// `impl Task { pub const SUBJECT: Field<..> = ..; .. }`: one typed
/// constant per column, for filters, ordering and projections.
fn field_consts(def: &ModelDef<'_>) -> TokenStream {
    let name = def.name;
    let table_name = &def.table_name;
    let consts = def.columns.iter().map(|c| {
        let const_name = format_ident!("{}", c.ident.unraw().to_string().to_uppercase());
        let ty = &c.ty;
        let column = &c.column;
        let doc =
            format!("Column `{column}` of table `{table_name}`, for query filters and ordering.");
        // a projection reads the declared type, but a key is never NULL in
        // the table even when its field is an `Option` until the insert
        let declared = if c.attrs.primary_key.is_some() {
            quote_spanned! {ty.span()=> <#ty as ::odm::types::ColumnType>::Inner }
        } else {
            quote_spanned! {ty.span()=> #ty }
        };
        quote_spanned! {ty.span()=>
            #[doc = #doc]
            pub const #const_name: ::odm::Field<#name, <#ty as ::odm::types::ColumnType>::Inner, #declared> =
                ::odm::Field::new(#table_name, #column);
        }
    });
    quote! {
        // an array or JSON column's constant names a long type
        // (`Field<M, Vec<i64>, Option<Vec<i64>>>`), which is not the user's to simplify
        #[allow(dead_code, clippy::type_complexity)]
        impl #name {
            #(#consts)*
        }
    }
}

/// `impl odm::Record`: the object's values, key, `choices` checks,
/// `default_fn` fills, reading generated values back, and its parent.
fn record_impl(def: &ModelDef<'_>) -> TokenStream {
    let name = def.name;
    let columns = &def.columns;
    let params = columns.iter().map(|c| {
        let ident = &c.ident;
        let ty = &c.ty;
        quote_spanned! {ty.span()=> <#ty as ::odm::types::ColumnType>::param(&self.#ident) }
    });
    let checks = columns.iter().filter_map(|c| {
        let (codes, _) = c.attrs.choices.as_ref()?;
        let ident = &c.ident;
        let column = &c.column;
        Some(
            quote! { ::odm::__private::check_choice_code(#column, &self.#ident, &[#(#codes),*])?; },
        )
    });
    let default_fns = columns.iter().filter_map(|c| {
        let (path, span) = c.attrs.default_fn.as_ref()?;
        let ident = &c.ident;
        Some(quote_spanned! {*span=>
            if ::core::option::Option::is_none(&self.#ident) {
                self.#ident = ::core::option::Option::Some(#path());
            }
        })
    });
    let own_offset = def.own_offset();
    // The row holds the columns `Table::reads_back` names, in column
    // order; table column `i + own_offset` is the struct's column `i` (a
    // child's column 0 is its parent's key, set on the parent).
    let read_backs = columns.iter().enumerate().map(|(i, c)| {
        let ident = &c.ident;
        let ty = &c.ty;
        let index = i + own_offset;
        quote_spanned! {ty.span()=>
            if table.reads_back(#index) {
                self.#ident = <#ty as ::odm::types::ColumnType>::decode(row, pos)?;
                pos += 1;
            }
        }
    });
    let parent_key_read_back = (own_offset == 1).then(|| {
        quote! {
            if table.reads_back(0) {
                pos += 1;
            }
        }
    });
    let (key_param, parent_ref, parent_mut, value_prefix) = match &def.parent {
        Some((pident, _)) => (
            quote!(::odm::Record::key_param(&self.#pident)),
            quote!(::core::option::Option::Some(&self.#pident as &dyn ::odm::Record)),
            quote!(::core::option::Option::Some(&mut self.#pident as &mut dyn ::odm::Record)),
            quote!(::odm::Record::key_param(&self.#pident),),
        ),
        None => {
            let ident = &def.key_column().ident;
            (
                quote!(::odm::types::ColumnType::param(&self.#ident)),
                quote!(::core::option::Option::None),
                quote!(::core::option::Option::None),
                quote!(),
            )
        }
    };
    quote! {
        impl ::odm::Record for #name {
            fn record_table(&self) -> &'static ::odm::Table {
                <Self as ::odm::Model>::table()
            }

            fn values(&self) -> ::std::vec::Vec<::core::option::Option<&(dyn ::odm::__private::ToSql + ::core::marker::Sync)>> {
                ::std::vec![#value_prefix #(#params),*]
            }

            fn key_param(&self) -> ::core::option::Option<&(dyn ::odm::__private::ToSql + ::core::marker::Sync)> {
                #key_param
            }

            fn validate(&self) -> ::odm::Result<()> {
                #(#checks)*
                ::core::result::Result::Ok(())
            }

            fn apply_default_fns(&mut self) {
                #(#default_fns)*
            }

            fn read_back(&mut self, row: &::odm::pg::Row) -> ::odm::Result<()> {
                let table = <Self as ::odm::Model>::table();
                let mut pos = 0usize;
                #parent_key_read_back
                #(#read_backs)*
                let _ = pos;
                ::core::result::Result::Ok(())
            }

            fn parent_record(&self) -> ::core::option::Option<&dyn ::odm::Record> {
                #parent_ref
            }

            fn parent_record_mut(&mut self) -> ::core::option::Option<&mut dyn ::odm::Record> {
                #parent_mut
            }
        }
    }
}

/// `impl odm::Model`: the key type, the lineage, the table's `static`
/// description and decoding a row.
fn model_impl(def: &ModelDef<'_>) -> TokenStream {
    let name = def.name;
    let table_name = &def.table_name;
    let model_name = name.to_string();
    let column_defs = def.columns.iter().map(column_def);
    let bind = opt_str(def.attrs.bind.as_deref());
    let create_sql = opt_str(def.attrs.create_sql.as_deref());
    let drop_sql = opt_str(def.attrs.drop_sql.as_deref());
    let from_row_body = from_row_body(def);
    let read_checks = def.columns.iter().filter_map(|c| {
        let (codes, _) = c.attrs.choices.as_ref()?;
        let ident = &c.ident;
        let column = &c.column;
        Some(quote! { ::odm::__private::check_choice_code(#column, &__odm_value.#ident, &[#(#codes),*])?; })
    });
    let (key_def, key_pos, key_ty, parent_fn, lineage, key_column) = match &def.parent {
        Some((_, pty)) => (
            parent_key_def(pty),
            0usize,
            quote!(<#pty as ::odm::Model>::Key),
            quote!(::core::option::Option::Some(<#pty as ::odm::Model>::table)),
            quote! { (Self, <#pty as ::odm::Model>::Lineage) },
            quote!(<#pty as ::odm::Model>::KEY_COLUMN),
        ),
        None => {
            let k = def.key_column();
            let ty = &k.ty;
            let c = &k.column;
            (
                quote!(),
                def.key_index.expect("checked above"),
                quote!(<#ty as ::odm::types::ColumnType>::Inner),
                quote!(::core::option::Option::None),
                quote! { (Self, ()) },
                quote!(#c),
            )
        }
    };
    quote! {
        impl ::odm::Model for #name {
            type Key = #key_ty;
            type Lineage = #lineage;
            const TABLE_NAME: &'static str = #table_name;
            const KEY_COLUMN: &'static str = #key_column;

            fn table() -> &'static ::odm::Table {
                static TABLE: ::odm::Table = ::odm::Table {
                    model: #model_name,
                    name: #table_name,
                    columns: &[#key_def #(#column_defs),*],
                    primary_key: #key_pos,
                    bind: #bind,
                    create_sql: #create_sql,
                    drop_sql: #drop_sql,
                    parent: #parent_fn,
                    cache: ::odm::__private::SqlCache::new(),
                };
                &TABLE
            }

            fn from_row_at(__odm_row: &::odm::pg::Row, __odm_start: usize) -> ::odm::Result<Self> {
                #from_row_body
                #(#read_checks)*
                ::core::result::Result::Ok(__odm_value)
            }
        }
    }
}

/// The start of `Model::from_row_at`: the parent decoded first (for a child
/// model), then the own columns into `__odm_value`.
fn from_row_body(def: &ModelDef<'_>) -> TokenStream {
    let own_offset = def.own_offset();
    let decodes = def.columns.iter().enumerate().map(|(i, c)| {
        let ident = &c.ident;
        let ty = &c.ty;
        let pos = i + own_offset;
        quote_spanned! {ty.span()=>
            #ident: <#ty as ::odm::types::ColumnType>::decode(__odm_row, __odm_base + #pos)?
        }
    });
    match &def.parent {
        Some((pident, pty)) => quote! {
            let __odm_parent = <#pty as ::odm::Model>::from_row_at(__odm_row, __odm_start)?;
            let __odm_base = __odm_start + <#pty as ::odm::Model>::table().width();
            let __odm_value = Self { #pident: __odm_parent, #(#decodes),* };
        },
        None => quote! {
            let __odm_base = __odm_start;
            let __odm_value = Self { #(#decodes),* };
        },
    }
}

/// A child model's first column: its key, of its parent key's type,
/// referencing the parent's row.
fn parent_key_def(pty: &Type) -> TokenStream {
    quote_spanned! {pty.span()=>
        ::odm::ColumnDef {
            field: <#pty as ::odm::Model>::KEY_COLUMN,
            name: <#pty as ::odm::Model>::KEY_COLUMN,
            sql_type: <<#pty as ::odm::Model>::Key as ::odm::types::ColumnType>::SQL_TYPE,
            nullable: false,
            primary_key: true,
            identity: false,
            default: ::core::option::Option::None,
            unique: false,
            index: false,
            foreign_key: ::core::option::Option::Some(::odm::ForeignKey {
                table: <#pty as ::odm::Model>::TABLE_NAME,
                column: <#pty as ::odm::Model>::KEY_COLUMN,
            }),
            choices: ::core::option::Option::None,
        },
    }
}

fn opt_str(value: Option<&str>) -> TokenStream {
    match value {
        Some(v) => quote!(::core::option::Option::Some(#v)),
        None => quote!(::core::option::Option::None),
    }
}

fn column_def(c: &ColumnField) -> TokenStream {
    let ty = &c.ty;
    let field = c.ident.unraw().to_string();
    let column = &c.column;
    let ct = quote_spanned!(ty.span()=> <#ty as ::odm::types::ColumnType>);
    let sql_type = match (&c.attrs.max_length, &c.attrs.json) {
        (Some((n, _)), _) => {
            let s = format!("VARCHAR({n})");
            quote!(#s)
        }
        (None, Some(_)) => quote!("JSON"),
        _ => quote!(#ct::SQL_TYPE),
    };
    let pk = c.attrs.primary_key.is_some();
    let has_default = c.attrs.default.is_some();
    let default = opt_str(c.attrs.default.as_deref());
    let unique = c.attrs.unique;
    let index = c.attrs.index;
    let foreign_key = match &c.attrs.foreign_key {
        Some((t, col)) => {
            quote!(::core::option::Option::Some(::odm::ForeignKey { table: #t, column: #col }))
        }
        None => quote!(::core::option::Option::None),
    };
    let choices = match &c.attrs.choices {
        Some((codes, _)) => quote!(::core::option::Option::Some(&[#(#codes),*])),
        None => quote!(::core::option::Option::None),
    };
    quote! {
        ::odm::ColumnDef {
            field: #field,
            name: #column,
            sql_type: #sql_type,
            nullable: #ct::NULLABLE,
            primary_key: #pk,
            identity: ::odm::__private::key_identity(#pk, #ct::NULLABLE, #ct::IDENTITY, #has_default),
            default: ::odm::__private::column_default(#default, #pk, #ct::NULLABLE, #ct::KEY_DEFAULT),
            unique: #unique,
            index: #index,
            foreign_key: #foreign_key,
            choices: #choices,
        }
    }
}

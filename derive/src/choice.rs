//! `#[derive(Choice)]`.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Data, DeriveInput, Error, Fields, Result};

use crate::attrs::ChoiceAttrs;

pub(crate) fn expand(input: DeriveInput) -> Result<TokenStream> {
    let name = &input.ident;
    if !input.generics.params.is_empty() {
        return Err(Error::new_spanned(
            &input.generics,
            "odm choices cannot be generic",
        ));
    }
    let Data::Enum(data) = &input.data else {
        return Err(Error::new(
            name.span(),
            "#[derive(Choice)] applies to enums with unit variants",
        ));
    };
    if data.variants.is_empty() {
        return Err(Error::new(
            name.span(),
            "#[derive(Choice)] needs at least one variant",
        ));
    }
    for v in &data.variants {
        if !matches!(v.fields, Fields::Unit) {
            return Err(Error::new_spanned(
                &v.fields,
                "#[derive(Choice)] variants cannot carry data",
            ));
        }
    }
    let attrs = ChoiceAttrs::parse(&input.attrs)?;
    let text = attrs.text;
    let type_name = name.to_string();
    let idents: Vec<_> = data.variants.iter().map(|v| &v.ident).collect();
    let names: Vec<String> = idents.iter().map(|i| i.to_string()).collect();
    let sql_type = if text { "TEXT" } else { "INTEGER" };

    let to_sql_body = if text {
        quote!(::odm::__private::ToSql::to_sql(
            &::odm::types::Choice::name(self),
            ty,
            out
        ))
    } else {
        quote!(::odm::__private::ToSql::to_sql(
            &::odm::types::Choice::to_i32(self),
            ty,
            out
        ))
    };
    let accepts = if text {
        quote!(<&str as ::odm::__private::ToSql>::accepts(ty))
    } else {
        quote!(<i32 as ::odm::__private::ToSql>::accepts(ty))
    };
    let from_sql_body = if text {
        quote! {
            let value = <&str as ::odm::__private::FromSql>::from_sql(ty, raw)?;
            <Self as ::odm::types::Choice>::from_name(value)
                .ok_or_else(|| ::std::format!("{:?} is not a valid {}", value, #type_name).into())
        }
    } else {
        quote! {
            let value = <i32 as ::odm::__private::FromSql>::from_sql(ty, raw)?;
            <Self as ::odm::types::Choice>::from_i32(value)
                .ok_or_else(|| ::std::format!("{} is not a valid {}", value, #type_name).into())
        }
    };
    let from_accepts = if text {
        quote!(<&str as ::odm::__private::FromSql>::accepts(ty))
    } else {
        quote!(<i32 as ::odm::__private::FromSql>::accepts(ty))
    };

    Ok(quote! {
        impl ::odm::types::Choice for #name {
            const TEXT: bool = #text;
            const TYPE_NAME: &'static str = #type_name;

            fn to_i32(&self) -> i32 {
                match self {
                    #(Self::#idents => Self::#idents as i32,)*
                }
            }

            fn name(&self) -> &'static str {
                match self {
                    #(Self::#idents => #names,)*
                }
            }

            fn from_i32(value: i32) -> ::core::option::Option<Self> {
                #(if value == Self::#idents as i32 { return ::core::option::Option::Some(Self::#idents); })*
                ::core::option::Option::None
            }

            fn from_name(value: &str) -> ::core::option::Option<Self> {
                match value {
                    #(#names => ::core::option::Option::Some(Self::#idents),)*
                    _ => ::core::option::Option::None,
                }
            }
        }

        impl ::odm::types::ColumnType for #name {
            const SQL_TYPE: &'static str = #sql_type;
            type Inner = #name;

            fn param(&self) -> ::core::option::Option<&(dyn ::odm::__private::ToSql + ::core::marker::Sync)> {
                ::core::option::Option::Some(self)
            }

            fn decode_nullable(row: &::odm::pg::Row, idx: usize) -> ::odm::Result<::core::option::Option<Self>> {
                ::odm::__private::decode_choice::<Self>(row, idx)
            }
        }

        impl ::odm::__private::ToSql for #name {
            fn to_sql(
                &self,
                ty: &::odm::__private::Type,
                out: &mut ::odm::__private::BytesMut,
            ) -> ::core::result::Result<::odm::__private::IsNull, ::odm::BoxError> {
                #to_sql_body
            }

            fn accepts(ty: &::odm::__private::Type) -> bool {
                #accepts
            }

            ::odm::__private::to_sql_checked!();
        }

        impl<'a> ::odm::__private::FromSql<'a> for #name {
            fn from_sql(
                ty: &::odm::__private::Type,
                raw: &'a [u8],
            ) -> ::core::result::Result<Self, ::odm::BoxError> {
                #from_sql_body
            }

            fn accepts(ty: &::odm::__private::Type) -> bool {
                #from_accepts
            }
        }
    })
}

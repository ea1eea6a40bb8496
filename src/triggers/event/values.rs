//! The string-valued fields cairn reads (account types, actions), as enums
//! that keep a value they do not know instead of failing.

use std::fmt;

use serde::de::Deserializer;
use serde::Deserialize;

/// Defines a string-valued enum that keeps unknown values in `Other`.
macro_rules! open_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
            /// A value this version of cairn does not act on, kept verbatim.
            /// (Build values with `From<&str>`, which never puts a known one here.)
            Other(String),
        }

        impl $name {
            /// The value as GitHub spells it.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $text,)+
                    Self::Other(text) => text,
                }
            }
        }

        impl From<&str> for $name {
            fn from(text: &str) -> Self {
                match text {
                    $($text => Self::$variant,)+
                    other => Self::Other(other.to_owned()),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
                struct Visitor;
                impl serde::de::Visitor<'_> for Visitor {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("a string")
                    }
                    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<$name, E> {
                        Ok($name::from(text))
                    }
                }
                de.deserialize_str(Visitor)
            }
        }
    };
}

open_enum! {
    /// The `type` of a GitHub account.
    AccountType {
        User = "User",
        Bot = "Bot",
        Organization = "Organization",
    }
}

open_enum! {
    /// `action` of an `issue_comment` event.
    CommentAction {
        Created = "created",
        Edited = "edited",
        Deleted = "deleted",
    }
}

open_enum! {
    /// `action` of a `pull_request` event.
    PullRequestAction {
        Opened = "opened",
        Closed = "closed",
        Reopened = "reopened",
        /// New commits on the head branch.
        Synchronize = "synchronize",
        Edited = "edited",
    }
}

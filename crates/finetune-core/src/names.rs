//! Enums that users name by a word (`--optimizer adamw`, `schedule = "cosine"`): one
//! declaration gives the variants their spellings, and from those `as_str`, [`Display`],
//! [`FromStr`] (whose error lists the valid names) and serde as that string.
//!
//! [`Display`]: std::fmt::Display
//! [`FromStr`]: std::str::FromStr

/// Declares a fieldless enum whose variants are named by the given strings, with `ALL`,
/// `as_str`, `Display`, `FromStr` (error: ``unknown WHAT `x`: expected one of a, b``) and
/// serde as the name.
///
/// ```
/// finetune_core::named_enum! {
///     /// A colour.
///     pub enum Colour("colour") { Red = "red", DarkBlue = "dark-blue" }
/// }
/// assert_eq!("dark-blue".parse::<Colour>().unwrap(), Colour::DarkBlue);
/// assert_eq!(Colour::Red.to_string(), "red");
/// let e = "green".parse::<Colour>().unwrap_err().to_string();
/// assert_eq!(e, "unknown colour `green`: expected one of red, dark-blue");
/// ```
#[macro_export]
macro_rules! named_enum {
    (
        $(#[$m:meta])*
        $vis:vis enum $name:ident($what:literal) {
            $($(#[$vm:meta])* $var:ident = $s:literal),+ $(,)?
        }
    ) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name {
            $($(#[$vm])* $var),+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$var),+];

            /// The name users write.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$var => $s),+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::Error;

            fn from_str(s: &str) -> $crate::Result<Self> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| {
                        let names: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                        $crate::Error::config(format!(
                            "unknown {} `{s}`: expected one of {}",
                            $what,
                            names.join(", ")
                        ))
                    })
            }
        }

        impl $crate::__serde::Serialize for $name {
            fn serialize<S: $crate::__serde::Serializer>(
                &self,
                s: S,
            ) -> ::std::result::Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> $crate::__serde::Deserialize<'de> for $name {
            fn deserialize<D: $crate::__serde::Deserializer<'de>>(
                d: D,
            ) -> ::std::result::Result<Self, D::Error> {
                let s = <::std::string::String as $crate::__serde::Deserialize>::deserialize(d)?;
                s.parse().map_err(<D::Error as $crate::__serde::de::Error>::custom)
            }
        }
    };
}

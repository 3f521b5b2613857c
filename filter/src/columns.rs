//! What a filter is checked against: the columns of a product, each with
//! the kind of value it holds.

/// The value kinds a product column may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `string`.
    String,
    /// `int64` / `int32` / `uint32` / `uint64` / `sint64` / `sint32`.
    Integer,
    /// `double` / `float`.
    Real,
    /// `bool`.
    Bool,
}

impl Kind {
    /// The kind of a protobuf scalar type named as the catalog names it
    /// (`string`, `int64`, ...); `None` for types product rows do not hold.
    pub fn of_proto_type(name: &str) -> Option<Self> {
        match name {
            "string" => Some(Self::String),
            "int64" | "int32" | "uint32" | "uint64" | "sint64" | "sint32" => Some(Self::Integer),
            "double" | "float" => Some(Self::Real),
            "bool" => Some(Self::Bool),
            _ => None,
        }
    }

    /// The kind in words, for error messages.
    pub fn describe(self) -> &'static str {
        match self {
            Self::String => "a string",
            Self::Integer => "an integer",
            Self::Real => "a number",
            Self::Bool => "a boolean",
        }
    }
}

/// The columns a filter may name.
pub trait Columns {
    /// The position and kind of the column called exactly `name`.
    fn find(&self, name: &str) -> Option<(usize, Kind)>;
    /// The name of the column at `index`.
    fn name(&self, index: usize) -> &str;
    /// Every column name, comma separated, for error messages.
    fn field_list(&self) -> String;
}

/// Columns given as a list of names and kinds (the catalog's view of a
/// product, for the registry and the CLI).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColumnList(pub Vec<(String, Kind)>);

impl ColumnList {
    /// The columns among `columns` (name, protobuf type) that a filter can
    /// compare; others (messages, enums) are left out.
    pub fn from_proto<N: AsRef<str>, T: AsRef<str>>(columns: impl IntoIterator<Item = (N, T)>) -> Self {
        Self(
            columns
                .into_iter()
                .filter_map(|(name, ty)| {
                    Kind::of_proto_type(ty.as_ref()).map(|kind| (name.as_ref().to_owned(), kind))
                })
                .collect(),
        )
    }
}

impl Columns for ColumnList {
    fn find(&self, name: &str) -> Option<(usize, Kind)> {
        self.0.iter().position(|(n, _)| n == name).map(|i| (i, self.0[i].1))
    }

    fn name(&self, index: usize) -> &str {
        &self.0[index].0
    }

    fn field_list(&self) -> String {
        self.0.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ")
    }
}

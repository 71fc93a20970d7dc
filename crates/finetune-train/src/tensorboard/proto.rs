//! The protobuf messages of a TensorBoard event file, as TensorFlow defines them
//! (`tensorflow/core/util/event.proto`, `framework/summary.proto`, `framework/tensor.proto`):
//! only the fields a scalar or text summary uses, with their field numbers.

/// One record of an event file.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Event {
    /// Seconds since the Unix epoch.
    #[prost(double, tag = "1")]
    pub wall_time: f64,
    /// The global step.
    #[prost(int64, tag = "2")]
    pub step: i64,
    /// What the record holds.
    #[prost(oneof = "What", tags = "3, 5")]
    pub what: Option<What>,
}

/// The payload of an [`Event`].
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum What {
    /// The file's first record: `brain.Event:2`.
    #[prost(string, tag = "3")]
    FileVersion(String),
    /// Summaries at this step.
    #[prost(message, tag = "5")]
    Summary(Summary),
}

/// Values logged at one step.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Summary {
    /// The values.
    #[prost(message, repeated, tag = "1")]
    pub value: Vec<Value>,
}

/// One tagged value.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Value {
    /// The tag (`train/loss`).
    #[prost(string, tag = "1")]
    pub tag: String,
    /// A scalar.
    #[prost(float, optional, tag = "2")]
    pub simple_value: Option<f32>,
    /// A tensor (a text summary's string).
    #[prost(message, optional, tag = "8")]
    pub tensor: Option<TensorProto>,
    /// Which TensorBoard plugin shows it (`text`).
    #[prost(message, optional, tag = "9")]
    pub metadata: Option<SummaryMetadata>,
}

/// The plugin a summary belongs to.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SummaryMetadata {
    /// The plugin.
    #[prost(message, optional, tag = "1")]
    pub plugin_data: Option<PluginData>,
}

/// A plugin's name.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PluginData {
    /// `text`, `scalars`, ...
    #[prost(string, tag = "1")]
    pub plugin_name: String,
}

/// A tensor; here a scalar string (`dtype` 7, `DT_STRING`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorProto {
    /// The element type.
    #[prost(int32, tag = "1")]
    pub dtype: i32,
    /// The shape (empty: a scalar).
    #[prost(message, optional, tag = "2")]
    pub tensor_shape: Option<TensorShapeProto>,
    /// The strings.
    #[prost(bytes = "vec", repeated, tag = "8")]
    pub string_val: Vec<Vec<u8>>,
}

/// A tensor's shape (no dimension: a scalar).
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorShapeProto {}

/// TensorFlow's `DT_STRING`.
pub const DT_STRING: i32 = 7;

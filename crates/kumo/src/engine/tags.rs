//! A function's tags: ListTags, TagResource and UntagResource.

use std::collections::BTreeMap;

use kumo_core::ApiError;
use kumo_core::function::FunctionMeta;

use super::{Engine, store_error};

impl Engine {
    /// ListTags on a function ARN.
    pub fn function_tags(&self, arn: &str) -> Result<BTreeMap<String, String>, ApiError> {
        let name = self.unqualified(arn)?;
        Ok(self.current(&name)?.meta.tags)
    }

    /// TagResource (`add`) or UntagResource (`remove`) on a function ARN; the
    /// new set is stored before it is visible.
    pub async fn retag_function(
        &self,
        arn: &str,
        add: &BTreeMap<String, String>,
        remove: &[String],
    ) -> Result<(), ApiError> {
        let name = self.unqualified(arn)?;
        let _guard = self.control.lock().await;
        let state = self.current(&name)?;
        let tags = kumo_core::tags::merged(&kumo_core::tags::without(&state.meta.tags, remove), add)?;
        let meta = FunctionMeta { tags, ..state.meta.clone() };
        self.store.put_meta(&name, &meta).await.map_err(store_error)?;
        if let Some(s) = self.write_functions().get_mut(&name) {
            s.meta = meta;
        }
        Ok(())
    }
}

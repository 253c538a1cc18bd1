//! The audit log: installs, reconnects, uninstalls, lost authorizations, sync settings and
//! status changes, with who did them and when.

use model::apps::{AuditEntry, AuditPage};
use model::SessionUser;

use super::{ConnectionError, Connections};
use crate::clock::now_ms;
use crate::secret::new_id;
use crate::store::AuditRow;

impl Connections {
    /// Records an action in the audit log; `None` as actor means Tandem itself.
    pub async fn audit(
        &self,
        actor: Option<&SessionUser>,
        action: &str,
        target: Option<&str>,
        summary: String,
    ) -> Result<(), ConnectionError> {
        let row = AuditRow {
            id: new_id(),
            at: now_ms(),
            actor_id: actor.map(|u| u.id.clone()),
            actor_name: actor.map(|u| format!("{} ({})", u.name, u.email)).unwrap_or_else(|| "Tandem".to_string()),
            action: action.to_string(),
            target: target.map(str::to_string),
            summary,
        };
        self.inner.store.insert_audit(&row).await?;
        Ok(())
    }

    /// One page of the audit log, newest first. `cursor` is a previous page's `next`.
    pub async fn audit_page(&self, cursor: Option<&str>, limit: i64) -> Result<AuditPage, ConnectionError> {
        let before = cursor.and_then(|c| c.split_once('_')).and_then(|(at, id)| at.parse::<i64>().ok().map(|at| (at, id)));
        let mut rows = self.inner.store.audit_page(before, limit + 1).await?;
        let next = if rows.len() as i64 > limit {
            rows.truncate(limit as usize);
            rows.last().map(|r| format!("{}_{}", r.at, r.id))
        } else {
            None
        };
        let entries = rows
            .into_iter()
            .map(|r| AuditEntry { id: r.id, at: r.at, actor: r.actor_name, action: r.action, summary: r.summary })
            .collect();
        Ok(AuditPage { entries, next })
    }
}

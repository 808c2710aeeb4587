// Verda's instance and volume status words that the project acts on, listed once (docs/verda-api.md). The
// instance provider, its destroy guard, the sweep, the money checks and the status screen all read these lists.

/** The instance is gone, or going, for good: nothing runs on it again, and it is no longer billed as running. */
export const INSTANCE_GONE_STATUSES: readonly string[] = ["deleting", "discontinued", "notfound"];

/** Waiting for `running` is pointless: the deploy failed, or the instance ended. */
export const INSTANCE_FAILED_STATUSES: readonly string[] = ["error", "no_capacity", "installation_failed", "discontinued", "notfound"];

/** The instance holds no volume and bills nothing any more (a `deleting` one may still hold its volumes). */
export const INSTANCE_ENDED_STATUSES: readonly string[] = ["discontinued", "notfound"];

/** A volume on its way out or out (a volume in the trash is listed by GET /volumes/trash instead). */
export const VOLUME_GONE_STATUSES: readonly string[] = ["deleting", "deleted"];

export const instanceGone = (status: unknown): boolean => INSTANCE_GONE_STATUSES.includes(String(status));
/** Not live: gone, or failed on the way (what a placement or a phase check must not count as deployed). */
export const instanceNotLive = (status: unknown): boolean => instanceGone(status) || INSTANCE_FAILED_STATUSES.includes(String(status));
export const instanceEnded = (status: unknown): boolean => INSTANCE_ENDED_STATUSES.includes(String(status));
export const volumeGone = (status: unknown): boolean => VOLUME_GONE_STATUSES.includes(String(status));

// Rescue of an orphaned scratch (docs/rescue.md): `npm run rescue -- --stack <day stack>`.
export { rescueScratch, RescueError, type RescueOptions, type RescueResult } from "./run";
export { rescueVerda } from "./verda";
export { editState, pulumiCli, readRevealedState, rescueSettings, type PulumiCli, type RescueSettings, type StateEditResult } from "./stack";
export { planRemovals, removeResources, type Removal } from "./state-edit";
export { rescueTarget, revealSecrets, parseExport, type RescueTarget, type StackExport } from "./state";
export type { RescueVerda, Waits } from "./cloud";

// Remote execution over SSH without the command provider plugin: see docs/remote-commands.md.
export { REMOTE_PATH, RemoteCommand, type RemoteCommandArgs, type RemoteCommandInputs, type RemoteCommandOutputs, type Logging } from "./command";
export { RemoteFiles, type RemoteFilesArgs, type RemoteFilesInputs, type RemoteFilesOutputs } from "./copy";
export type { ConnectionArgs, SshConnection } from "./connection";
export { fingerprintSha256, parseAuthorizedKey } from "./hostkey";

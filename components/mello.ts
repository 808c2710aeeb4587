// mello: the always-on app/dev server. Either the existing Hetzner VPS adopted into Pulumi (never
// recreated: imported by id, protected and retained on delete, create-time fields ignored) with its firewall and an optional
// DNS record, or an external host Pulumi only connects to.
import * as pulumi from "@pulumi/pulumi";
import * as hcloud from "@pulumi/hcloud";
import * as cloudflare from "@pulumi/cloudflare";
import type { MelloSettings } from "../infra/config";

export interface MelloArgs {
  settings: MelloSettings;
}

/** Tailscale's direct-connection port; without it peers fall back to slow DERP relays. */
export const TAILSCALE_UDP_PORT = "41641";

export function melloFirewallRules(sshSourceIps: string[]): hcloud.types.input.FirewallRule[] {
  const anywhere = ["0.0.0.0/0", "::/0"];
  return [
    { direction: "in", protocol: "tcp", port: "22", sourceIps: sshSourceIps, description: "SSH" },
    { direction: "in", protocol: "tcp", port: "80", sourceIps: anywhere, description: "HTTP (ACME and redirect)" },
    { direction: "in", protocol: "tcp", port: "443", sourceIps: anywhere, description: "HTTPS" },
    { direction: "in", protocol: "udp", port: TAILSCALE_UDP_PORT, sourceIps: anywhere, description: "Tailscale direct connections" },
  ];
}

export class Mello extends pulumi.ComponentResource {
  /** Where SSH reaches mello (DNS name, configured address or public IPv4). */
  public readonly address: pulumi.Output<string>;
  public readonly sshUser: pulumi.Output<string>;
  public readonly sshPort: pulumi.Output<number>;
  /** mello's pinned SSH host key (authorized_keys format). */
  public readonly hostKey: pulumi.Output<string>;
  public readonly publicIpv4: pulumi.Output<string | undefined>;
  public readonly managed: boolean;

  constructor(name: string, args: MelloArgs, opts?: pulumi.ComponentResourceOptions) {
    super("comfyume:mello:Mello", name, {}, opts);
    const s = args.settings;
    this.managed = s.mode === "hetzner";
    this.sshUser = pulumi.output(s.sshUser);
    this.sshPort = pulumi.output(s.sshPort);
    this.hostKey = pulumi.output(s.hostKey);

    if (s.mode === "external") {
      this.address = pulumi.output(s.address);
      this.publicIpv4 = pulumi.output<string | undefined>(undefined);
    } else {
      const server = new hcloud.Server(
        `${name}-server`,
        {
          name: s.name,
          serverType: s.serverType,
          image: s.image,
          location: s.location,
          // The firewall is attached by FirewallAttachment below, not through the server.
          ignoreRemoteFirewallIds: true,
        },
        {
          parent: this,
          import: String(s.serverId),
          protect: true,
          // Adopted, not created: even an unprotect and destroy only drops it from the state.
          retainOnDelete: true,
          // Create-time only fields: a difference must never rebuild the server.
          ignoreChanges: ["image", "sshKeys", "userData"],
        },
      );
      const firewall = new hcloud.Firewall(
        `${name}-firewall`,
        { name: `${s.name}-firewall`, rules: melloFirewallRules(s.sshSourceIps) },
        { parent: this },
      );
      new hcloud.FirewallAttachment(
        `${name}-firewall-attachment`,
        { firewallId: firewall.id.apply(Number), serverIds: [server.id.apply(Number)] },
        { parent: this },
      );
      if (s.dns) {
        new cloudflare.DnsRecord(
          `${name}-dns`,
          {
            zoneId: s.dns.zoneId,
            name: s.dns.name,
            type: "A",
            content: server.ipv4Address,
            ttl: s.dns.ttl,
            proxied: s.dns.proxied,
            comment: "mello (managed by comfyume-infra)",
          },
          { parent: this },
        );
      }
      this.publicIpv4 = server.ipv4Address;
      this.address = s.address ? pulumi.output(s.address) : server.ipv4Address;
    }

    this.registerOutputs({
      address: this.address,
      sshUser: this.sshUser,
      sshPort: this.sshPort,
      hostKey: this.hostKey,
      publicIpv4: this.publicIpv4,
    });
  }
}

# terraphim-firecracker as a Nomad system job: one tfc daemon on every client
# node of the node pool "vm-hosts", run with the raw_exec driver (VMMs, TAP
# devices and network namespaces need root on the host; enable raw_exec in
# the client config). etcd runs outside this job (three members, e.g. from
# Debian's etcd-server package on three hosts); set its endpoints below.
# The project is installed at /opt/terraphim-firecracker on every host
# (bash scripts/setup.sh && npx tfc image build --all), as for systemd.
job "tfc" {
  type      = "system"
  node_pool = "vm-hosts"

  update {
    max_parallel = 1
    stagger      = "30s"
  }

  group "tfc" {
    network {
      port "api" {
        static = 7070
      }
    }

    service {
      name     = "tfc"
      port     = "api"
      provider = "nomad"
      check {
        type     = "http"
        path     = "/v1/health"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "serve" {
      driver = "raw_exec"

      config {
        command = "/usr/bin/node"
        args    = ["/opt/terraphim-firecracker/bin/tfc.js", "serve", "--listen", "${NOMAD_IP_api}:7070"]
      }

      template {
        destination = "local/tfc.toml"
        data        = <<-EOT
          [cluster]
          endpoints = ["http://10.0.0.11:2379", "http://10.0.0.12:2379", "http://10.0.0.13:2379"]
          node_name = "{{ env "node.unique.name" | toLower }}"
          advertise_url = "http://{{ env "NOMAD_IP_api" }}:7070"
          token_env = "TFC_CLUSTER_TOKEN"
        EOT
      }

      # Secrets from Nomad Variables at nomad/jobs/tfc: api_token, cluster_token.
      template {
        destination = "secrets/env"
        env         = true
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs/tfc" }}
          TFC_TOKEN={{ .api_token }}
          TFC_CLUSTER_TOKEN={{ .cluster_token }}
          {{ end }}
        EOT
      }

      env {
        TFC_CONFIG = "${NOMAD_TASK_DIR}/tfc.toml"
      }

      # Time to destroy the node's VMs and revoke its etcd lease.
      kill_timeout = "60s"
      kill_signal  = "SIGTERM"

      resources {
        cpu    = 1000
        memory = 1024
      }
    }
  }
}

// A private DNS zone for an internal Container Apps environment's domain: every app host name (*.<domain>) resolves
// to the environment's private IP inside the linked virtual network.

@description('The environment\'s default domain.')
param zoneName string

@description('The environment\'s private IP.')
param staticIp string

@description('Resource id of the virtual network to link.')
param vnetId string

param tags object = {}

resource zone 'Microsoft.Network/privateDnsZones@2024-06-01' = {
  name: zoneName
  location: 'global'
  tags: tags
}

resource wildcard 'Microsoft.Network/privateDnsZones/A@2024-06-01' = {
  parent: zone
  name: '*'
  properties: {
    ttl: 300
    aRecords: [
      {
        ipv4Address: staticIp
      }
    ]
  }
}

resource link 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2024-06-01' = {
  parent: zone
  name: 'environment-vnet'
  location: 'global'
  tags: tags
  properties: {
    registrationEnabled: false
    virtualNetwork: {
      id: vnetId
    }
  }
}

@description('Name of the zone.')
output zoneName string = zone.name

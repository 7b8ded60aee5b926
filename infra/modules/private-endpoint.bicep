// A private endpoint for one sub-resource of a PaaS resource (Redis, a storage account's blob or file service) in the
// private endpoint subnet, with the private DNS zone of that sub-resource (privatelink.<service suffix>), linked to the
// virtual network, and a zone group that writes the endpoint's A record into it. Inside the network the resource's
// ordinary host name (<name>.redis.cache.windows.net, <account>.blob.<storage suffix>, ...) is a CNAME to
// <name>.privatelink.<...>, which this zone answers with the endpoint's private IP: clients keep the usual host names.

@description('Azure region of the endpoint (the virtual network\'s).')
param location string

@description('Name of the private endpoint.')
param name string

@description('Resource id of the subnet the endpoint takes its IP from.')
param subnetId string

@description('Resource id of the resource the endpoint connects to.')
param targetId string

@description('Sub-resource (group id) of the target: redisCache, blob, file, ...')
param groupId string

@description('The private DNS zone of that sub-resource, for example privatelink.blob.core.windows.net.')
param zoneName string

@description('Resource id of the virtual network whose DNS must resolve the endpoint.')
param vnetId string

param tags object = {}

resource zone 'Microsoft.Network/privateDnsZones@2024-06-01' = {
  name: zoneName
  location: 'global'
  tags: tags
}

resource link 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2024-06-01' = {
  parent: zone
  // Named after the network: several deployments in one resource group share the zone, each linking its own network.
  name: '${last(split(vnetId, '/'))}-link'
  location: 'global'
  tags: tags
  properties: {
    registrationEnabled: false
    virtualNetwork: {
      id: vnetId
    }
  }
}

resource endpoint 'Microsoft.Network/privateEndpoints@2024-05-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    subnet: {
      id: subnetId
    }
    customNetworkInterfaceName: '${name}-nic'
    privateLinkServiceConnections: [
      {
        name: name
        properties: {
          privateLinkServiceId: targetId
          groupIds: [
            groupId
          ]
        }
      }
    ]
  }
}

// The endpoint's A record in the zone, kept up to date by Azure (also when the endpoint's IP changes).
resource zoneGroup 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2024-05-01' = {
  parent: endpoint
  name: 'default'
  properties: {
    privateDnsZoneConfigs: [
      {
        name: replace(zoneName, '.', '-')
        properties: {
          privateDnsZoneId: zone.id
        }
      }
    ]
  }
}

@description('Resource id of the private endpoint.')
output endpointId string = endpoint.id

@description('Resource id of the private DNS zone.')
output zoneId string = zone.id

@description('Id of the zone group (the endpoint\'s DNS record); depend on it before using the endpoint.')
output zoneGroupId string = zoneGroup.id

@description('Id of the zone\'s link to the virtual network.')
output linkId string = link.id

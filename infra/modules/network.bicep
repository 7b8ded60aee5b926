// The virtual network of the Container Apps environment: one subnet delegated to Microsoft.App/environments (a
// workload-profiles environment needs at least a /27; a /23 leaves room for many silo apps and their revisions), and
// one subnet for the private endpoints of Redis and the storage accounts. The second subnet exists whether or not the
// deployment uses private endpoints, so switching privateNetworking never has to delete a subnet that is in use.

@description('Azure region.')
param location string

@description('Name of the virtual network.')
param name string

@description('Address space of the virtual network.')
param addressPrefix string

@description('Address range of the subnet the Container Apps environment owns (at least /27).')
param environmentSubnetPrefix string

@description('Address range of the subnet of the private endpoints (one IP per endpoint; a /27 is plenty).')
param privateEndpointSubnetPrefix string

param tags object = {}

resource vnet 'Microsoft.Network/virtualNetworks@2024-05-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    addressSpace: {
      addressPrefixes: [
        addressPrefix
      ]
    }
    subnets: [
      {
        name: 'container-apps'
        properties: {
          addressPrefix: environmentSubnetPrefix
          delegations: [
            {
              name: 'Microsoft.App.environments'
              properties: {
                serviceName: 'Microsoft.App/environments'
              }
            }
          ]
        }
      }
      {
        name: 'private-endpoints'
        properties: {
          addressPrefix: privateEndpointSubnetPrefix
          // Network policies (NSG, route tables) do not apply to private endpoints in this subnet (the default,
          // stated): there is no NSG on either subnet.
          privateEndpointNetworkPolicies: 'Disabled'
        }
      }
    ]
  }
}

@description('Resource id of the virtual network.')
output vnetId string = vnet.id

@description('Resource id of the subnet delegated to the Container Apps environment.')
output environmentSubnetId string = vnet.properties.subnets[0].id

@description('Resource id of the subnet of the private endpoints.')
output privateEndpointSubnetId string = resourceId('Microsoft.Network/virtualNetworks/subnets', vnet.name, 'private-endpoints')
